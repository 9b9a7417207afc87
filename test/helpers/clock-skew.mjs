// A preload for the integration suites (`node --import <this file>`): the process's wall clock
// (Date) runs SHOAL_TEST_CLOCK_OFFSET_MS milliseconds off, as on a host whose clock is wrong. The
// monotonic clock (performance.now, timers) is left alone, and so is TLS (OpenSSL reads the
// system clock), as on such a host with certificates issued by managers whose clocks are right.
const offset = Number(process.env.SHOAL_TEST_CLOCK_OFFSET_MS ?? 0);
if (!Number.isFinite(offset)) throw new Error(`SHOAL_TEST_CLOCK_OFFSET_MS is not a number: ${process.env.SHOAL_TEST_CLOCK_OFFSET_MS}`);
if (offset !== 0) {
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
