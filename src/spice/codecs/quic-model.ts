// The adaptive model of QUIC (SFALIC-derived): Golomb-Rice code families, per-channel context
// buckets, the wait-mask schedule and the MELCODE run-length state. Parameters and tables follow
// spice-common common/quic.c (family_init, find_model_params with DEFevol 3, set_wm_trigger,
// decode_state_run) and quic_family_tmpl.c (golomb_decoding, update_model).
import { TABRAND_CHAOS } from './quic-tables.ts';

/** quic.c: DEFmaxclen (codeword length limit), DEFwmimax, DEFwminext. */
const MAX_CODEWORD_LEN = 26;
export const WMI_MAX = 6;
export const WMI_NEXT = 2048;
/** besttrigtab row for DEFevol = 3: halving threshold by wait-mask index. */
const WM_TRIGGER = [110, 550, 900, 800, 550, 400, 350, 250, 140, 160, 140];
/** MELCODE state → run-length exponent (quic.c J[]). */
const MELC_J = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13, 14, 15];

export const mask = (n: number): number => (n >= 32 ? 0xffffffff : (1 << n) - 1) >>> 0;

function ceilLog2(v: number): number {
  let r = 0;
  while (1 << r < v) r++;
  return r;
}

/** A Golomb-Rice code family for `bpc` bits per channel (quic.c family_init). */
export class Family {
  readonly nGRcodewords: number[] = [];
  readonly notGRcwlen: number[] = [];
  readonly notGRprefixmask: number[] = [];
  readonly notGRsuffixlen: number[] = [];
  /** codeLen[value * 8 + l]: codeword length of `value` under code l. */
  readonly codeLen = new Uint8Array(256 * 8);
  /** L → U remapping of decoded residuals (correlate_init); zero past the channel range. */
  readonly xlatL2U = new Uint8Array(256);
  readonly levels: number;

  constructor(readonly bpc: number) {
    this.levels = 1 << bpc;
    for (let l = 0; l < bpc; l++) {
      const altPrefix = Math.min(MAX_CODEWORD_LEN - bpc, mask(bpc - l));
      const altCodewords = mask(bpc) + 1 - (altPrefix << l);
      this.nGRcodewords[l] = altPrefix << l;
      this.notGRsuffixlen[l] = ceilLog2(altCodewords);
      this.notGRcwlen[l] = altPrefix + this.notGRsuffixlen[l]!;
      this.notGRprefixmask[l] = mask(32 - altPrefix);
      for (let b = 0; b < 256; b++) {
        this.codeLen[b * 8 + l] = b < this.nGRcodewords[l]! ? (b >> l) + l + 1 : this.notGRcwlen[l]!;
      }
    }
    const m = mask(bpc);
    for (let s = 0; s <= m; s++) this.xlatL2U[s] = s & 1 ? m - (s >> 1) : s >> 1;
  }
}

export const FAMILY_8BPC = new Family(8);
export const FAMILY_5BPC = new Family(5);

/** Per-model state (quic.c CommonState): shared by R,G,B; the alpha channel has its own. */
export class ModelState {
  waitcnt = 0;
  seed = 0xff; // stabrand(): TABRAND_SEEDMASK
  wmidx = 0;
  wmileft = WMI_NEXT;
  wmTrigger = WM_TRIGGER[0]!;
  melcstate = 0;
  melclen = MELC_J[0]!;
  melcorder = 1;

  tabrand(): number {
    this.seed = (this.seed + 1) >>> 0;
    return TABRAND_CHAOS[this.seed & 0xff]!;
  }

  nextWaitMaskIndex(): void {
    this.wmidx++;
    this.wmTrigger = WM_TRIGGER[Math.min(this.wmidx, 10)]!;
    this.wmileft = WMI_NEXT;
  }

  /** After each decoded run: the expected run length shrinks one step. */
  melcDown(): void {
    if (this.melcstate) {
      this.melclen = MELC_J[--this.melcstate]!;
      this.melcorder = 1 << this.melclen;
    }
  }

  melcUp(): void {
    if (this.melcstate < MELC_J.length - 1) {
      this.melclen = MELC_J[++this.melcstate]!;
      this.melcorder = 1 << this.melclen;
    }
  }
}

/**
 * Context buckets of one colour channel (find_model_params / fill_model_structures, DEFevol 3:
 * bucket sizes 1, 2, 4, 8 … over the previous residual, the last bucket absorbing the rest).
 */
export class ChannelModel {
  readonly bucketOf: Uint8Array;
  readonly counters: Uint32Array;
  readonly bestcode: Uint8Array;
  /** Residuals of the current row, shifted by one: corr[0] is the "-1" element. */
  corr: Uint8Array;
  /** levels − 1: context values index bucketOf under this mask. */
  readonly levelMask: number;
  readonly bpc: number;

  constructor(
    readonly family: Family,
    width: number,
  ) {
    const levels = family.levels;
    this.levelMask = levels - 1;
    this.bpc = family.bpc;
    this.bucketOf = new Uint8Array(levels);
    let bucket = 0;
    let start = 0;
    let size = 1;
    let rep = 2;
    for (;;) {
      if (--rep === 0) {
        rep = 1;
        size *= 2;
      }
      let end = start + size - 1;
      if (end + size >= levels) end = levels - 1;
      this.bucketOf.fill(bucket, start, end + 1);
      bucket++;
      if (end >= levels - 1) break;
      start = end + 1;
    }
    this.counters = new Uint32Array(bucket * 8);
    this.bestcode = new Uint8Array(bucket).fill(family.bpc - 1);
    this.corr = new Uint8Array(width + 1);
  }

  /** update_model: add the value's code lengths, pick the shortest code, halve past the trigger. */
  update(state: ModelState, context: number, value: number): void {
    const base = this.bucketOf[context & this.levelMask]! * 8;
    const bpc = this.bpc;
    const c = this.counters;
    const len = this.family.codeLen;
    const lv = value * 8;
    let best = bpc - 1;
    let bestLen = (c[base + best] += len[lv + best]!);
    for (let i = bpc - 2; i >= 0; i--) {
      const l = (c[base + i] += len[lv + i]!);
      if (l < bestLen) {
        best = i;
        bestLen = l;
      }
    }
    this.bestcode[base >> 3] = best;
    if (bestLen > state.wmTrigger) for (let i = 0; i < bpc; i++) c[base + i]! >>>= 1;
  }

  /** The Golomb code to use after residual `context`. */
  code(context: number): number {
    return this.bestcode[this.bucketOf[context & (this.family.levels - 1)]!]!;
  }
}
