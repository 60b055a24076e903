// The one error type of the protocol. Anything else thrown by a handler becomes an
// internal error (code 999) at the dispatcher, with the original kept as `cause`.

export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IOFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  PluginNotAvailableLimitedConnectivity: 51,
  Internal: 999,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = "",
    options?: { cause?: unknown },
  ) {
    super(msg, options);
    this.name = "CniError";
  }

  /** Wraps any thrown value, leaving CniErrors untouched so nothing is wrapped twice. */
  static from(err: unknown, code: number = ErrorCode.Internal): CniError {
    if (err instanceof CniError) return err;
    const msg = err instanceof Error ? err.message : String(err);
    return new CniError(code, msg, "", { cause: err });
  }
}

export const invalidConfig = (field: string, why: string) =>
  new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: ${field}: ${why}`);
export const unsupportedField = (field: string, value: unknown) =>
  new CniError(ErrorCode.UnsupportedField, `unsupported field "${field}"`, JSON.stringify(value) ?? "");
