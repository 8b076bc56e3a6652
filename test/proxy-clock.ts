/** The proxy tests' manual clock is the shared fake clock, starting at 0. */
export { createFakeClock as manualClock } from './helpers/fake-clock.js';
export type { FakeClock as ManualClock } from './helpers/fake-clock.js';
