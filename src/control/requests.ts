/**
 * afsteerd's control socket, as both ends speak it: a unix stream socket (mode 0600) carrying one
 * JSON object per line, each request answered by one JSON line. The plugin sends the endpoint
 * notification (src/cni/notify.ts), `afsteerd status` and `afsteerd prefer` their requests
 * (src/control/client.ts), the plugin's main script the ADD hand-off (./handoff.ts: the
 * conversation and its replies), and afsteerd serves them (src/negotiator/control/socket-server.ts). Pure.
 */
import * as z from 'zod/mini';
import { CNI_ADD_OP, CNI_GO_OP, type CniAddResultReply, type CniDeclineReply, type CniReadyReply } from './handoff-protocol';

/** Longest request line the daemon reads before answering "request too large". */
export const MAX_CONTROL_REQUEST = 64 * 1024;

/** `{"op":"status"}`: everything `afsteerd status` shows. */
export const StatusRequestSchema = z.strictObject({ op: z.literal('status') });
/**
 * `{"op":"endpoint","event":"add"|"del","containerId":…,"ifname":…}`: the plugin's ADD/DEL
 * notification. afsteerd re-reads the state files on it; it does not trust the message's contents.
 */
export const EndpointNotificationSchema = z.strictObject({
  op: z.literal('endpoint'),
  event: z.enum(['add', 'del']),
  containerId: z.string(),
  ifname: z.string(),
});
/** `{"op":"prefer","target":PEER-NODE|CNF-ID,"family":"ipv4"|"ipv6"|"auto"}`: `afsteerd prefer`, an operator pin. */
export const PreferRequestSchema = z.strictObject({
  op: z.literal('prefer'),
  target: z.string(),
  family: z.enum(['ipv4', 'ipv6', 'auto']),
});
const NsIdentitySchema = z.strictObject({ dev: z.number(), ino: z.number() });
/** The plugin's ADD hand-off request (./handoff.ts). The env keys afsteerd uses are the CNI ones; others are ignored. */
export const CniAddRequestSchema = z.strictObject({
  op: z.literal(CNI_ADD_OP),
  v: z.number(),
  env: z.record(z.string(), z.string()),
  stdin: z.string(),
  ns: z.strictObject({ net: NsIdentitySchema, mnt: NsIdentitySchema }),
  clientMs: z.number(),
  trace: z.boolean(),
  /** The plugin's pin layout; absent: layout 1 (./handoff.ts). */
  layout: z.optional(z.strictObject({ version: z.number().check(z.int()), readableFrom: z.number().check(z.int()) })),
});
/** The plugin's go-ahead for the request before it on the same connection. */
export const CniGoSchema = z.strictObject({ op: z.literal(CNI_GO_OP) });
/** Any request. */
export const ControlRequestSchema = z.discriminatedUnion('op', [
  StatusRequestSchema,
  EndpointNotificationSchema,
  PreferRequestSchema,
  CniAddRequestSchema,
  CniGoSchema,
]);

/** The status request. */
export type StatusRequest = z.infer<typeof StatusRequestSchema>;
/** The plugin's notification. */
export type EndpointNotification = z.infer<typeof EndpointNotificationSchema>;
/** The operator's pin request. */
export type PreferRequest = z.infer<typeof PreferRequestSchema>;
/** A request on the control socket. */
export type ControlRequest = z.infer<typeof ControlRequestSchema>;

/** The answer to a request that failed (malformed, unknown op, too large). */
export interface ControlFailure {
  ok: false;
  error: string;
}
/** The answer to an endpoint notification: how many local pods the daemon now knows. */
export interface EndpointReply {
  ok: true;
  endpoints: number;
}
/** The answer to a status request: the daemon's status report, fields as `afsteerd status --json` shows them. */
export type StatusReply = { ok: true } & Record<string, unknown>;
/** The hand-off request, as validated. */
export type CniAddRequestMessage = z.infer<typeof CniAddRequestSchema>;
/** Any answer. */
export type ControlReply = ControlFailure | EndpointReply | StatusReply | CniReadyReply | CniDeclineReply | CniAddResultReply;

/** The plugin's notification of an ADD or DEL. */
export function endpointNotification(event: 'add' | 'del', containerId: string, ifname: string): EndpointNotification {
  return { op: 'endpoint', event, containerId, ifname };
}

/** `afsteerd prefer TARGET FAMILY` as a request. */
export function preferRequest(target: string, family: PreferRequest['family']): PreferRequest {
  return { op: 'prefer', target, family };
}

/** A message as it goes on the socket: its JSON and a newline. */
export function encodeControlLine(msg: ControlRequest | ControlReply | Record<string, unknown>): string {
  return JSON.stringify(msg) + '\n';
}

/** One received line as a JSON object; throws (SyntaxError, or "expected a JSON object") otherwise. */
export function decodeControlObject(line: string): Record<string, unknown> {
  const v = JSON.parse(line) as unknown;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('expected a JSON object');
  return v as Record<string, unknown>;
}

/** A decoded object as a known request, or undefined (the daemon answers it with a ControlFailure). */
export function parseControlRequest(obj: Record<string, unknown>): ControlRequest | undefined {
  const r = ControlRequestSchema.safeParse(obj);
  return r.success ? r.data : undefined;
}
