/**
 * A tiny OCI image built offline from the machine's busybox-static (Debian's busybox-static
 * package: /bin/busybox), FROM scratch with buildah in its own vfs storage, written as an OCI
 * archive that `ctr images import` takes: no registry anywhere.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

/** Runs a command to completion (timeoutMs, then SIGKILL); resolves with its exit code and output. */
export function runCommand(cmd: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    });
  });
}

/**
 * Builds image ref (e.g. localhost/afsteer-pause:test) with /bin/busybox, a link per applet and
 * entrypoint, in scratch dir work; returns the path of the OCI archive.
 */
export async function buildBusyboxImage(work: string, ref: string, applets: string[], entrypoint: string[]): Promise<string> {
  const bin = join(work, 'rootfs/bin');
  mkdirSync(bin, { recursive: true });
  copyFileSync('/bin/busybox', join(bin, 'busybox'));
  for (const a of applets) symlinkSync('busybox', join(bin, a));
  const B = ['--root', join(work, 'storage'), '--runroot', join(work, 'run'), '--storage-driver', 'vfs'];
  const from = await runCommand('buildah', [...B, 'from', '--pull=never', 'scratch']);
  if (from.code !== 0) throw new Error(`buildah from scratch failed: ${from.out}`);
  const c = from.out.trim().split('\n').at(-1)!;
  const archive = join(work, 'image.oci.tar');
  for (const step of [
    ['copy', c, join(work, 'rootfs'), '/'],
    ['config', '--env', 'PATH=/bin', '--entrypoint', JSON.stringify(entrypoint), c],
    ['commit', '--quiet', '--rm', c, ref],
    ['push', '--quiet', ref, `oci-archive:${archive}:${ref}`],
  ]) {
    const r = await runCommand('buildah', [...B, ...step]);
    if (r.code !== 0) throw new Error(`buildah ${step[0]} failed: ${r.out}`);
  }
  return archive;
}
