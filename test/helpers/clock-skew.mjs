// A preload for the integration suites (`node --import <this file>`): the process's wall clock
// (Date) runs SHOAL_TEST_CLOCK_OFFSET_MS milliseconds off, as on a host whose clock is wrong. The
// monotonic clock (performance.now, timers) is left alone, and so is TLS (OpenSSL reads the
// system clock), as on such a host with certificates issued by managers whose clocks are right.
// With SHOAL_TEST_CLOCK_OFFSET_FILE, the offset (ms) is read from that file every 20 ms instead:
// a test steps the clock while the process runs, as NTP or a resumed VM would.
import { readFileSync } from 'node:fs';

let offset = Number(process.env.SHOAL_TEST_CLOCK_OFFSET_MS ?? 0);
if (!Number.isFinite(offset)) throw new Error(`SHOAL_TEST_CLOCK_OFFSET_MS is not a number: ${process.env.SHOAL_TEST_CLOCK_OFFSET_MS}`);
const file = process.env.SHOAL_TEST_CLOCK_OFFSET_FILE;
if (file) {
  const read = () => {
    try {
      const v = Number(readFileSync(file, 'utf8').trim() || 0);
      if (Number.isFinite(v)) offset = v;
    } catch {
      // not written yet: no offset
    }
  };
  read();
  setInterval(read, 20).unref();
}
if (offset !== 0 || file) {
  const RealDate = globalThis.Date;
  class SkewedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(RealDate.now() + offset);
      else super(...args);
    }
    static now() {
      return RealDate.now() + offset;
    }
  }
  globalThis.Date = SkewedDate;
}
