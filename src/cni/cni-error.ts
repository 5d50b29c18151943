import { causeText, describeError } from '../util/describe-error';
import { UnsafePathError } from '../util/safe-fs';

/** CNI error codes (SPEC "Error" section) and the error type every verb throws. */

/** Well-known CNI error codes used by afsteer. */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  Internal: 999,
} as const;

/** An error that is reported to the runtime as CNI error JSON on stdout. */
export class CniError extends Error {
  /** Wraps a failure with its CNI code, a human message and optional details. */
  constructor(
    readonly code: number,
    msg: string,
    readonly details?: string,
    options?: { cause?: unknown },
  ) {
    super(msg, options);
    this.name = 'CniError';
  }

  /** The SPEC's error object for this error. */
  toJSON(cniVersion: string): Record<string, unknown> {
    const out: Record<string, unknown> = { cniVersion, code: this.code, msg: this.message };
    const details = this.details ?? causeText(this.cause);
    if (details) out.details = details;
    return out;
  }
}

/** Converts any thrown value into a CniError, keeping it as the cause. */
export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  // A configured path (stateDir, logFile, what afsteer keeps in them) that is not what it must be.
  if (err instanceof UnsafePathError)
    return new CniError(CniCode.InvalidConfig, `unusable path: ${err.message}`, undefined, { cause: err });
  return new CniError(CniCode.Internal, `afsteer internal error: ${describeError(err)}`, undefined, { cause: err });
}
