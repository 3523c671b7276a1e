// Which cores a latency step's processes run on (Linux, with taskset). On a
// 2-core VM a process woken from the other core pays for it: on this
// project's PVM machine a chunk through any proxy arrived 13 µs after its
// direct twin (median) with the upstream and the proxy on one core and the
// client on the other, and 137 µs with the proxy alone on a core; unpinned,
// rows landed wherever the scheduler put them, and what read as one proxy
// being slower than another was where it ran. Placed alike, rows compare.

import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';

/** Whether processes can be placed here: taskset works and there are two cores to place them on. */
export const CAN_PLACE = cpus().length >= 2 && spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }).status === 0;
export const ALL_CORES = `0-${cpus().length - 1}`;

/** Moves every thread of each process to `cores` (taskset's list: "1", "0-1"). */
export function placeOn(pids, cores) {
  for (const pid of pids) {
    const run = spawnSync('taskset', ['-a', '-p', '-c', cores, String(pid)], { stdio: 'ignore' });
    if (run.status !== 0) throw new Error(`taskset could not place process ${pid} on cores ${cores}`);
  }
}

/** A command line that starts on `cores`; unchanged when `cores` is undefined (nothing placed). */
export function startOn(cores, command, args) {
  return cores === undefined ? [command, args] : ['taskset', ['-c', cores, command, ...args]];
}
