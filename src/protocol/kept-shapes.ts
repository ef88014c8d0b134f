/**
 * Objects held for the life of the process so that V8 keeps their hidden classes. Optimized code checks the
 * hidden class (map) of the objects it was compiled for, and holds those maps weakly: when every instance of
 * a class dies, as every per-session object of a daemon does between two sessions, the next full GC frees
 * the map and throws away all code compiled against it ("weak objects" in --trace-deopt). The next session
 * then runs unoptimized until the same code is compiled again: ~30 functions and tens of milliseconds of
 * compile per small-file session. One live instance keeps the map, and with it the code.
 */
const kept: object[] = [];

/** Holds `sample`, an instance of a class whose objects live only as long as a session, until exit. */
export function keepShape<T extends object>(sample: T): T {
  kept.push(sample);
  return sample;
}
