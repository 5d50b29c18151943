/**
 * Where `afsteer install` puts things, relative to --root: the one place for the layout (the
 * manifests test and the install record's checks read it), and which paths the installer can
 * have written — an install record naming any other is refused.
 */
import { relPathProblem } from '../util/safe-fs';
import { isConfName } from './plan';

/** Target paths, relative to --root. */
export const INSTALL_PATHS = {
  plugin: 'opt/cni/bin/afsteer',
  pluginDaemonLink: 'opt/cni/bin/afsteerd',
  daemonLink: 'usr/local/bin/afsteerd',
  cniConfDir: 'etc/cni/net.d',
  exampleConflist: 'etc/cni/net.d/10-afsteer.conflist',
  key: 'etc/afsteer/cluster.key',
  identityDir: 'etc/afsteer/identity',
  daemonConfig: 'etc/afsteer/afsteerd.json',
  unit: 'etc/systemd/system/afsteerd.service',
  record: 'var/lib/afsteer/install.json',
  backups: 'var/lib/afsteer/install-backup',
} as const;

/** Paths the installer writes as files (besides a chained conflist) and as symbolic links. */
const FILES = [
  INSTALL_PATHS.plugin,
  INSTALL_PATHS.key,
  ...['node.key', 'node.cert', 'authority.pub'].map((f) => `${INSTALL_PATHS.identityDir}/${f}`),
  INSTALL_PATHS.daemonConfig,
  INSTALL_PATHS.unit,
  INSTALL_PATHS.exampleConflist,
];
const LINKS = [INSTALL_PATHS.pluginDaemonLink, INSTALL_PATHS.daemonLink];

/** True when rel is a CNI config file the installer may have chained afsteer into. */
export function isConfPath(rel: string): boolean {
  const dir = `${INSTALL_PATHS.cniConfDir}/`;
  return rel.startsWith(dir) && isConfName(rel.slice(dir.length)) && relPathProblem(rel) === undefined;
}

/** What the installer may have put at rel: a file, a symbolic link, or nothing (not one of its paths). */
export function kindAt(rel: string): 'file' | 'symlink' | undefined {
  if ((LINKS as string[]).includes(rel)) return 'symlink';
  if ((FILES as string[]).includes(rel) || isConfPath(rel)) return 'file';
  return undefined;
}

/** Where the backup of what the installer replaced at rel is kept. */
export function backupOf(rel: string): string {
  return `${INSTALL_PATHS.backups}/${rel}`;
}

const ancestors = (rel: string): string[] =>
  rel
    .split('/')
    .slice(0, -1)
    .map((_, i, parts) => parts.slice(0, i + 1).join('/'));

/** True when rel is a directory the installer may have created: one on the way to a path it writes, or to a backup. */
export function isInstallerDir(rel: string): boolean {
  return [...FILES, ...LINKS, INSTALL_PATHS.record, `${INSTALL_PATHS.cniConfDir}/x.conflist`]
    .flatMap((p) => [...ancestors(p), ...ancestors(backupOf(p))])
    .includes(rel);
}
