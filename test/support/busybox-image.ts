/**
 * A tiny OCI image built offline from the machine's busybox-static (Debian's busybox-static
 * package: /bin/busybox), FROM scratch with buildah in its own vfs storage, written as an OCI
 * archive that `ctr images import` takes: no registry anywhere.
 */
import { copyFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from './process';

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
