// lsg-edge serve: microphone audio → 16 kHz mono signed 16-bit PCM, on the audio rendering thread.
//
// The AudioContext runs at the device's rate (often 48 kHz). Each 128-sample render quantum is
// mixed to mono, low-pass filtered below 8 kHz (a windowed-sinc FIR, so that nothing above the new
// Nyquist frequency folds back into speech), resampled by linear interpolation to 16 kHz and
// converted to int16. Every 100 ms of output (1600 samples, 3200 bytes) goes to the page as one
// transferable ArrayBuffer, which the page sends as one binary WebSocket frame.

const TARGET_RATE_HZ = 16000;
const CHUNK_SAMPLES = 1600; // 100 ms at 16 kHz
const CUTOFF_HZ = 7200; // below the 8 kHz Nyquist frequency of the output, with room for the transition band
const N_TAPS = 63;

function lowPassTaps(rateHz) {
  // Blackman-windowed sinc, unit gain at DC.
  const fc = CUTOFF_HZ / rateHz; // cycles per input sample
  const middle = (N_TAPS - 1) / 2;
  const taps = new Float32Array(N_TAPS);
  let sum = 0;
  for (let k = 0; k < N_TAPS; k++) {
    const x = k - middle;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    const window = 0.42 - 0.5 * Math.cos((2 * Math.PI * k) / (N_TAPS - 1)) + 0.08 * Math.cos((4 * Math.PI * k) / (N_TAPS - 1));
    taps[k] = sinc * window;
    sum += taps[k];
  }
  for (let k = 0; k < N_TAPS; k++) taps[k] /= sum;
  return taps;
}

class PcmResampler extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE_HZ; // input samples per output sample
    this.taps = this.step > 1 ? lowPassTaps(sampleRate) : new Float32Array([1]);
    this.history = new Float32Array(this.taps.length - 1); // the last raw inputs, for the filter
    this.previous = 0; // last filtered sample of the previous quantum
    this.position = 1; // next output's position; 0 = `previous`, 1 = this quantum's first sample
    this.out = new Int16Array(CHUNK_SAMPLES);
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const n = channels[0].length;
    const raw = new Float32Array(this.history.length + n);
    raw.set(this.history);
    for (const channel of channels) {
      for (let i = 0; i < n; i++) raw[this.history.length + i] += channel[i] / channels.length;
    }
    // filtered[0] = the previous quantum's last sample, filtered[1 + i] = this quantum's i-th
    const filtered = new Float32Array(n + 1);
    filtered[0] = this.previous;
    const taps = this.taps;
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let k = 0; k < taps.length; k++) acc += taps[k] * raw[i + taps.length - 1 - k];
      filtered[i + 1] = acc;
    }
    this.history = raw.slice(raw.length - this.history.length);
    this.previous = filtered[n];
    while (this.position <= n) {
      const i = Math.floor(this.position);
      const f = this.position - i;
      const s = i < n ? filtered[i] * (1 - f) + filtered[i + 1] * f : filtered[n];
      const clipped = Math.max(-1, Math.min(1, s));
      this.out[this.filled++] = clipped < 0 ? Math.round(clipped * 32768) : Math.round(clipped * 32767);
      if (this.filled === CHUNK_SAMPLES) {
        this.port.postMessage(this.out.buffer, [this.out.buffer]);
        this.out = new Int16Array(CHUNK_SAMPLES);
        this.filled = 0;
      }
      this.position += this.step;
    }
    this.position -= n;
    return true;
  }
}

registerProcessor("pcm-resampler", PcmResampler);
