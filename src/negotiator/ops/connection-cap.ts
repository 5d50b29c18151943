/**
 * A cap on the open connections of a listener: beyond it, the connection idle the longest (no
 * request in flight) is closed to make room, or the newcomer when every one is busy. A flood of
 * idle connections then costs afsteerd at most `max` descriptors and never the scrape that follows.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** Caps server's open connections at max; onClosed is told of each connection closed for the cap. */
export function capConnections(server: Server, max: number, onClosed: () => void): void {
  // Insertion order is idle order: a connection goes (back) to the end when it becomes idle.
  const idle = new Set<Socket>();
  const busy = new Set<Socket>();
  const close = (s: Socket) => {
    idle.delete(s);
    busy.delete(s);
    s.destroy();
    onClosed();
  };
  server.on('connection', (s: Socket) => {
    idle.add(s);
    s.once('close', () => {
      idle.delete(s);
      busy.delete(s);
    });
    if (idle.size + busy.size <= max) return;
    // The longest idle, which is the newcomer itself when every other connection is busy.
    close(idle.values().next().value!);
  });
  server.on('request', (req, res) => {
    const s = req.socket;
    if (s.destroyed) return;
    idle.delete(s);
    busy.add(s);
    res.once('close', () => {
      if (s.destroyed || !busy.delete(s)) return;
      idle.add(s);
    });
  });
}
