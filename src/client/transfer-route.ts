/**
 * How a transfer reached the remote fcpd (README "Works wherever ssh works"), once its session is granted:
 * what `fcp status` and --json's start event show instead of a standing daemon's HOST:7523 that an ssh
 * transfer never used.
 */

/** The standing fcpd on its port; or a one-session fcpd ssh started, reached directly (TLS) or through ssh. */
export const TRANSPORT_KINDS = ['daemon', 'ssh-direct', 'ssh-carried'] as const;
export type TransportKind = (typeof TRANSPORT_KINDS)[number];

export interface TransferRoute {
  readonly transport: TransportKind;
  /** The port the serving fcpd listens on: the standing one's, or the one-session fcpd's ephemeral port. */
  readonly port: number;
}
