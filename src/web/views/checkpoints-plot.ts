// Size written and pause of each checkpoint over time, drawn by uPlot (a canvas chart, ~50 kB, loaded only when
// the Checkpoints tab is opened). Two scales: bytes on the left (log 2), milliseconds on the right.
import { useSignal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import type uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Checkpoint } from '../lib/api.ts';
import { formatBytes, formatMs } from '../lib/format.ts';
import { html } from '../lib/html.ts';

const HEIGHT = 220;
/** Series colours; the browser test looks for these pixels on the canvas. */
export const SIZE_COLOUR = '#2463eb';
export const PAUSE_COLOUR = '#d97706';

function series(list: Checkpoint[]): uPlot.AlignedData {
  const sorted = [...list].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  return [
    sorted.map((c) => Date.parse(c.createdAt) / 1000),
    sorted.map((c) => c.newBytes + c.diskBytes),
    sorted.map((c) => c.pauseMs),
  ];
}

function options(width: number): uPlot.Options {
  return {
    width,
    height: HEIGHT,
    cursor: { drag: { x: false, y: false } },
    // Sizes on a log scale: the first checkpoint holds all of RAM and the disk, later ones only what changed (often
    // a hundredth of it), and both should be readable.
    scales: {
      x: { time: true },
      bytes: { distr: 3, log: 2 },
      ms: { auto: true, range: (_u, _min, max) => [0, Math.max(max, 1) * 1.15] },
    },
    series: [
      { label: 'Time' },
      {
        label: 'Written',
        scale: 'bytes',
        stroke: SIZE_COLOUR,
        width: 2,
        fill: `${SIZE_COLOUR}14`,
        points: { show: true, size: 7, fill: SIZE_COLOUR },
        value: (_u, v) => (v == null ? '—' : formatBytes(v)),
      },
      {
        label: 'Pause',
        scale: 'ms',
        stroke: PAUSE_COLOUR,
        width: 2,
        dash: [6, 4],
        points: { show: true, size: 7, fill: PAUSE_COLOUR },
        value: (_u, v) => formatMs(v ?? null),
      },
    ],
    axes: [
      {},
      // A log axis hands null for the ticks it leaves unlabelled.
      {
        scale: 'bytes',
        size: 72,
        values: (_u, vals) => vals.map((v) => (v == null ? '' : formatBytes(v).replace('.0 ', ' '))),
      },
      {
        scale: 'ms',
        side: 1,
        size: 60,
        grid: { show: false },
        values: (_u, vals) => vals.map((v) => (v == null ? '' : `${v} ms`)),
      },
    ],
  };
}

export function CheckpointPlot({ list }: { list: Checkpoint[] }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = useRef(list);
  const error = useSignal('');
  latest.current = list;

  useEffect(() => {
    let disposed = false;
    let resize: ResizeObserver | undefined;
    import('uplot').then(({ default: UPlot }) => {
      const el = host.current;
      if (disposed || !el) return;
      plot.current = new UPlot(options(el.clientWidth || 600), series(latest.current), el);
      resize = new ResizeObserver(() => {
        if (el.clientWidth && plot.current && plot.current.width !== el.clientWidth)
          plot.current.setSize({ width: el.clientWidth, height: HEIGHT });
      });
      resize.observe(el);
    }, (e: Error) => (error.value = `The plot could not be loaded: ${e.message}`));
    return () => {
      disposed = true;
      resize?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);

  useEffect(() => {
    plot.current?.setData(series(list));
  }, [list]);

  return html`
    <div class="cp-plot">
      ${error.value && html`<p class="error">${error.value}</p>`}
      <div ref=${host} id="checkpoint-plot" data-points=${list.length}
        aria-label=${`Size written and pause of ${list.length} checkpoint(s) over time`} role="img"></div>
    </div>`;
}
