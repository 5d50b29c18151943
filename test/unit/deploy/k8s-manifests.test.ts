/**
 * conf/k8s/ against the code: the ConfigMap's config passes afsteerd's own schema, the init
 * container's installer flags exist, every mount path is the code's default, the image is what
 * `npm run image` builds, the liveness command is a real afsteerd subcommand, the Secret's name
 * and key match what the DaemonSet mounts.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { runAfsteerd } from '../../../src/bin/route';
import { parseNetConf } from '../../../src/cni/config';
import { INSTALL_OPTIONS, INSTALL_PATHS } from '../../../src/install/install';
import { authModeOf, parseDaemonConfig } from '../../../src/negotiator/daemon-config';

type Doc = Record<string, any>;
const docs = (f: string): Doc[] =>
  parseAllDocuments(readFileSync(join('conf/k8s', f), 'utf8')).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJSON() as Doc;
  });
const all = [...docs('afsteer.yaml'), ...docs('cluster-key-secret.yaml')];
const byKind = (k: string): Doc => all.find((d) => d.kind === k)!;
const ds = byKind('DaemonSet');
const pod = ds.spec.template.spec;
const init = pod.initContainers[0];
const main = pod.containers[0];
const volume = (name: string): Doc => pod.volumes.find((v: Doc) => v.name === name);
const mount = (c: Doc, path: string): Doc | undefined => c.volumeMounts.find((m: Doc) => m.mountPath === path);
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  version: string;
  afsteer: { image: string };
  scripts: Record<string, string>;
};

describe('conf/k8s manifests match the code', () => {
  it('the ConfigMap holds a config afsteerd accepts, with the code default paths', () => {
    const cm = byKind('ConfigMap');
    const file = main.args[main.args.indexOf('--config') + 1] as string;
    const key = file.slice(file.lastIndexOf('/') + 1);
    expect(mount(main, dirname(file))?.name).toBe(pod.volumes.find((v: Doc) => v.configMap?.name === cm.metadata.name).name);
    const cfg = parseDaemonConfig(cm.data[key], 'ConfigMap');
    const defaults = parseDaemonConfig(JSON.stringify({ nodeName: 'x', keyFile: '/k' }));
    expect([cfg.pinDir, cfg.stateDir, cfg.controlSocket]).toEqual([defaults.pinDir, defaults.stateDir, defaults.controlSocket]);
    // The node's name comes from --node-name (downward API); the override passes the schema too.
    expect(main.args.slice(main.args.indexOf('--node-name'), main.args.indexOf('--node-name') + 2)).toEqual([
      '--node-name',
      '$(NODE_NAME)',
    ]);
    expect(main.env.find((e: Doc) => e.name === 'NODE_NAME').valueFrom.fieldRef.fieldPath).toBe('spec.nodeName');
    expect(parseDaemonConfig(JSON.stringify({ ...cfg, nodeName: 'worker-1.example' })).nodeName).toBe('worker-1.example');
    // The main container mounts exactly the config's dirs from the host.
    expect(mount(main, cfg.pinDir.replace(/\/afsteer$/, ''))?.name).toBe('bpffs');
    expect(mount(main, cfg.stateDir)?.name).toBe('state');
    expect(mount(main, dirname(cfg.controlSocket))?.name).toBe('run');
    expect(volume('bpffs').hostPath.path).toBe('/sys/fs/bpf');
    expect(volume('state').hostPath.path).toBe(cfg.stateDir);
    expect(volume('run').hostPath.path).toBe(dirname(cfg.controlSocket));
    // The node's own identity: the config's identity dir, read-only from the host directory node
    // bootstrap wrote (type Directory: no identity, no afsteerd); no cluster key on the node.
    expect(cfg.keyFile).toBeUndefined();
    expect(authModeOf(cfg)).toBe('identity');
    const im = mount(main, cfg.identity!)!;
    expect(im.readOnly).toBe(true);
    expect(volume(im.name).hostPath).toEqual({ path: cfg.identity, type: 'Directory' });
    expect(pod.volumes.some((v: Doc) => v.secret)).toBe(false);
  });

  it('the plugin (run by the runtime on the host) uses the same defaults the daemon mounts', () => {
    const conf = parseNetConf(
      JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'afsteer', prevResult: { cniVersion: '1.0.0', ips: [] } }),
    );
    const cfg = parseDaemonConfig(byKind('ConfigMap').data['afsteerd.json']);
    expect([conf.pinDir, conf.stateDir, conf.daemonSocket]).toEqual([cfg.pinDir, cfg.stateDir, cfg.controlSocket]);
  });

  it('the init container runs the installer with real flags, into the host paths the installer writes', () => {
    expect(init.command).toEqual(['/usr/local/bin/afsteer']);
    expect(init.args[0]).toBe('install');
    const { values } = parseArgs({ args: init.args.slice(1), options: INSTALL_OPTIONS, strict: true, allowPositionals: false });
    const root = values.root as string;
    for (const [vol, rel] of [
      ['cni-bin', dirname(INSTALL_PATHS.plugin)],
      ['cni-conf', INSTALL_PATHS.cniConfDir],
      ['state', dirname(INSTALL_PATHS.record)],
    ] as const) {
      expect(mount(init, `${root}/${rel}`)?.name, rel).toBe(vol);
      expect(volume(vol).hostPath.path).toBe(`/${rel}`);
    }
    expect(values['cni-only']).toBe(true); // the daemon runs in the pod: no key, config or unit on the host
  });

  it('the image is what npm run image builds', () => {
    expect(pkg.scripts.image).toBe('bash scripts/build-image.sh');
    expect(readFileSync('scripts/build-image.sh', 'utf8')).toMatch(/IMAGE="\$\(jq -r \.afsteer\.image package\.json\):\$VERSION"/);
    for (const c of [init, main]) {
      expect(c.image).toBe(`${pkg.afsteer.image}:${pkg.version}`);
      expect(c.imagePullPolicy).toBe('Never');
    }
    expect(readFileSync('scripts/build-image.sh', 'utf8')).toMatch(/"\$STAGE\/usr\/local\/bin\/afsteer"/);
    expect(readFileSync('scripts/build-image.sh', 'utf8')).toMatch(/ln -s afsteer "\$STAGE\/usr\/local\/bin\/afsteerd"/);
  });

  it('the liveness probe is a real afsteerd subcommand', async () => {
    const cmd = main.livenessProbe.exec.command as string[];
    expect(cmd[0]).toBe('/usr/local/bin/afsteerd');
    expect(main.command).toEqual(['/usr/local/bin/afsteerd']);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      // No daemon at this socket: exit 1 ("cannot reach"), not 2 (unknown command or flag).
      expect(await runAfsteerd([...cmd.slice(1), '--socket', '/nonexistent/afsteerd.sock'], () => {})).toBe(1);
      expect(await runAfsteerd(['no-such-command'], () => {})).toBe(2);
    } finally {
      err.mockRestore();
    }
  });

  it('runs on every node with only the capabilities it needs, each with a reason', () => {
    expect(pod.hostNetwork).toBe(true);
    expect(pod.hostPID).toBeUndefined();
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(main.securityContext.privileged).toBe(false);
    expect(main.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['BPF', 'PERFMON', 'NET_ADMIN'] });
    expect(init.securityContext.capabilities).toEqual({ drop: ['ALL'] });
    const text = readFileSync('conf/k8s/afsteer.yaml', 'utf8');
    for (const cap of ['BPF', 'PERFMON', 'NET_ADMIN']) expect(text).toMatch(new RegExp(`#[^\\n]*\\n(\\s*#[^\\n]*\\n)*\\s*- ${cap}\\n`));
  });
});
