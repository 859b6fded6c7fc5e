// Capability sets are arrays of u32 words on the wire, bit n of the set = bit (n % 32) of word
// n / 32 (spice/protocol.h; spice-gtk spice-channel.c store_caps / test_capability).

export function capsFromBits(bits: readonly number[]): number[] {
  const words: number[] = [];
  for (const b of bits) {
    const w = b >>> 5;
    while (words.length <= w) words.push(0);
    words[w] = (words[w]! | (1 << (b & 31))) >>> 0;
  }
  return words;
}

export function hasCap(words: readonly number[], bit: number): boolean {
  const w = words[bit >>> 5];
  return w !== undefined && (w & (1 << (bit & 31))) !== 0;
}
