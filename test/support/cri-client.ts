/**
 * A small CRI (Kubernetes Container Runtime Interface, runtime.v1) client over a runtime's unix
 * socket: the calls kubelet makes to run and end a pod sandbox (Version, RunPodSandbox,
 * PodSandboxStatus, ListPodSandbox, StopPodSandbox, RemovePodSandbox), with the message subset in
 * cri/runtime-v1.proto (field numbers as in k8s.io/cri-api). Every call has a deadline.
 * kubeletSandboxConfig builds the PodSandboxConfig kubelet sends for a plain pod.
 */
import { join } from 'node:path';
import { type Client, credentials, type GrpcObject, loadPackageDefinition, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** The .proto with the runtime.v1 messages this client uses. */
export const CRI_PROTO = join(import.meta.dirname, 'cri', 'runtime-v1.proto');

/** PodSandboxMetadata: the pod's name, namespace, uid and the attempt number. */
export interface SandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}

/** PodSandboxConfig, as far as kubelet fills it for a plain pod (field names in proto-loader's camelCase). */
export interface SandboxConfig {
  metadata: SandboxMetadata;
  hostname: string;
  logDirectory: string;
  dnsConfig?: { servers: string[]; searches: string[]; options: string[] };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  linux: {
    cgroupParent: string;
    securityContext: {
      namespaceOptions: { network: NamespaceMode; pid: NamespaceMode; ipc: NamespaceMode };
      privileged: boolean;
      seccomp: { profileType: 'RuntimeDefault' | 'Unconfined' | 'Localhost'; localhostRef?: string };
    };
    sysctls: Record<string, string>;
  };
}

/** NamespaceMode. */
export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';

/** PodSandboxStatusResponse, decoded (enums as names, int64 as strings). */
export interface SandboxStatusResponse {
  status: {
    id: string;
    metadata: SandboxMetadata;
    state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
    createdAt: string;
    network: { ip: string; additionalIps: { ip: string }[] } | null;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    runtimeHandler: string;
  };
  /** Verbose only: runtime-specific JSON by key (containerd: "info", with the runtime spec and the CNI result). */
  info: Record<string, string>;
}

/** One entry of ListPodSandbox. */
export interface SandboxListItem {
  id: string;
  metadata: SandboxMetadata;
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
}

type Callback<T> = (err: Error | null, value?: T) => void;
type Method<Req, Res> = (req: Req, opts: { deadline: Date }, cb: Callback<Res>) => void;

type Stub = Client & Record<string, Method<unknown, unknown>>;

/** A runtime.v1 RuntimeService and ImageService client on a unix socket. */
export class CriClient {
  private readonly runtime: Stub;
  private readonly images: Stub;

  /** Connects (lazily) to the runtime at socket; callTimeoutMs bounds each call. */
  constructor(
    readonly socket: string,
    private readonly callTimeoutMs = 60_000,
  ) {
    const def = loadSync(CRI_PROTO, { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true });
    const pkg = loadPackageDefinition(def) as GrpcObject;
    const v1 = (pkg.runtime as GrpcObject).v1 as GrpcObject;
    const stub = (name: string) => new (v1[name] as ServiceClientConstructor)(`unix://${socket}`, credentials.createInsecure()) as Stub;
    this.runtime = stub('RuntimeService');
    this.images = stub('ImageService');
  }

  private call<Res>(method: string, req: unknown, stub = this.runtime, timeoutMs = this.callTimeoutMs): Promise<Res> {
    return new Promise((resolve, reject) => {
      const fn = stub[method]!.bind(stub) as Method<unknown, Res>;
      fn(req, { deadline: new Date(Date.now() + timeoutMs) }, (err, value) => {
        if (err) reject(new Error(`CRI ${method}: ${err.message}`, { cause: err }));
        else resolve(value as Res);
      });
    });
  }

  /** Version: the runtime's name and CRI API version. */
  version(): Promise<{ version: string; runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }> {
    return this.call('Version', { version: 'v1' });
  }

  /** RunPodSandbox: creates the sandbox (netns, CNI ADD, pause container); resolves with its id. */
  async runPodSandbox(config: SandboxConfig, runtimeHandler = ''): Promise<string> {
    const r = await this.call<{ podSandboxId: string }>('RunPodSandbox', { config, runtimeHandler });
    return r.podSandboxId;
  }

  /** PodSandboxStatus (verbose: with the runtime's info map). */
  podSandboxStatus(id: string, verbose = true): Promise<SandboxStatusResponse> {
    return this.call('PodSandboxStatus', { podSandboxId: id, verbose });
  }

  /** ListPodSandbox, unfiltered. */
  async listPodSandbox(): Promise<SandboxListItem[]> {
    const r = await this.call<{ items: SandboxListItem[] }>('ListPodSandbox', {});
    return r.items;
  }

  /** StopPodSandbox: CNI DEL while the netns still exists, then the pause container is killed. */
  async stopPodSandbox(id: string): Promise<void> {
    await this.call('StopPodSandbox', { podSandboxId: id });
  }

  /** RemovePodSandbox: removes a stopped sandbox. */
  async removePodSandbox(id: string): Promise<void> {
    await this.call('RemovePodSandbox', { podSandboxId: id });
  }

  /** ImageStatus: the image's id and tags as the runtime knows it, or null when it has no such image. */
  async imageStatus(ref: string): Promise<{ id: string; repoTags: string[] } | null> {
    const r = await this.call<{ image: { id: string; repoTags: string[] } | null }>('ImageStatus', { image: { image: ref } }, this.images);
    return r.image;
  }

  /** Closes the channels. */
  close(): void {
    this.runtime.close();
    this.images.close();
  }
}

/**
 * The PodSandboxConfig kubelet (kuberuntime_sandbox.go) sends for a pod without a security
 * context or host namespaces: hostname = pod name, the pod's labels and kubelet's own, network and
 * IPC namespaces of the pod, a PID namespace per container, not privileged, seccomp runtime/default
 * for the sandbox, the pod's cgroup under cgroupParent (kubelet: /kubepods/besteffort/pod<uid>).
 */
export function kubeletSandboxConfig(
  pod: { name: string; namespace: string; uid: string; attempt?: number },
  logRoot: string,
  cgroupRoot: string,
): SandboxConfig {
  return {
    metadata: { name: pod.name, uid: pod.uid, namespace: pod.namespace, attempt: pod.attempt ?? 0 },
    hostname: pod.name,
    logDirectory: join(logRoot, `${pod.namespace}_${pod.name}_${pod.uid}`),
    dnsConfig: {
      servers: ['10.96.0.10'],
      searches: [`${pod.namespace}.svc.cluster.local`, 'svc.cluster.local', 'cluster.local'],
      options: ['ndots:5'],
    },
    labels: {
      app: pod.name,
      'io.kubernetes.pod.name': pod.name,
      'io.kubernetes.pod.namespace': pod.namespace,
      'io.kubernetes.pod.uid': pod.uid,
    },
    annotations: { 'kubernetes.io/config.seen': new Date().toISOString(), 'kubernetes.io/config.source': 'api' },
    linux: {
      cgroupParent: `${cgroupRoot}/pod${pod.uid}`,
      securityContext: {
        namespaceOptions: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' },
        privileged: false,
        seccomp: { profileType: 'RuntimeDefault' },
      },
      sysctls: {},
    },
  };
}
