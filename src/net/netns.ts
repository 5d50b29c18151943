/** Entering a network namespace for a synchronous section (setns on the main thread, then back). */
import { closeSync, openSync } from 'node:fs';
import { CLONE_NEWNET, setns } from '../native/libc';

/**
 * Runs fn with the calling thread in the network namespace at nsPath and always returns to
 * the original one. fn must be synchronous: sockets it creates stay bound to nsPath's
 * namespace afterwards, which is how netlink sockets for a pod are made.
 */
export function inNetns<T>(nsPath: string, fn: () => T): T {
  const self = openSync('/proc/thread-self/ns/net', 'r');
  let target: number;
  try {
    target = openSync(nsPath, 'r');
  } catch (err) {
    closeSync(self);
    throw err;
  }
  try {
    setns(target, CLONE_NEWNET);
    try {
      return fn();
    } finally {
      setns(self, CLONE_NEWNET);
    }
  } finally {
    closeSync(target);
    closeSync(self);
  }
}
