import { fileURLToPath } from 'node:url';

/** Path of a preload that moves a process's wall clock (see skewed-clock.ts): for `node --import=`. */
export const SKEWED_CLOCK_PRELOAD = fileURLToPath(new URL('./skewed-clock.ts', import.meta.url));
