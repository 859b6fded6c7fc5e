// The console toolbar's sound buttons: mute (remembered) and the microphone (asks the browser only when pressed).
import { html } from '../lib/html.ts';
import type { ConsoleAudio } from '../../spice-web/audio.ts';

const MIC_TITLE = {
  off: "Send this computer's microphone to the guest (the browser asks first)",
  asking: 'Waiting for the browser to allow the microphone…',
  on: 'The microphone goes to the guest while a program in it records; click to stop',
  denied: 'The browser did not allow the microphone (click to ask again)',
  error: 'No microphone could be opened (click to try again)',
} as const;

/** `tick` changes whenever the audio state does (SpiceConsole onAudioChange), so the buttons re-render. */
export function AudioButtons({ audio, tick }: { audio: ConsoleAudio | undefined; tick: number }) {
  if (!audio) return null;
  return html`<span class="console-audio" data-tick=${tick}>
    <button id="console-mute" aria-pressed=${audio.muted} onClick=${() => audio.setMuted(!audio.muted)}
      title=${audio.muted ? "Unmute the guest's sound" : "Mute the guest's sound"}>${audio.muted ? 'Unmute' : 'Mute'}</button>
    <button id="console-mic" data-state=${audio.mic} aria-pressed=${audio.mic === 'on'}
      onClick=${() => void audio.toggleMic()} title=${audio.micMessage || MIC_TITLE[audio.mic]}>${
      audio.mic === 'on' ? 'Mic on' : audio.mic === 'asking' ? 'Mic…' : 'Mic off'}</button>
  </span>`;
}
