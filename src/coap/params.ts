/** Transmission parameters (RFC 7252 §4.8), all configurable; times in milliseconds. */
export interface TransmissionParameters {
  ackTimeout: number;
  ackRandomFactor: number;
  maxRetransmit: number;
  nstart: number;
  defaultLeisure: number;
  probingRate: number;
  /** Assumed maximum one-way latency (§4.8.2). */
  maxLatency: number;
}

export const defaultTransmissionParameters: Readonly<TransmissionParameters> = {
  ackTimeout: 2000,
  ackRandomFactor: 1.5,
  maxRetransmit: 4,
  nstart: 1,
  defaultLeisure: 5000,
  probingRate: 1,
  maxLatency: 100_000,
};

/** Derived times (§4.8.2). */
export function derivedTimes(p: TransmissionParameters) {
  const maxTransmitSpan = p.ackTimeout * (2 ** p.maxRetransmit - 1) * p.ackRandomFactor;
  const maxTransmitWait = p.ackTimeout * (2 ** (p.maxRetransmit + 1) - 1) * p.ackRandomFactor;
  const processingDelay = p.ackTimeout;
  const maxRtt = 2 * p.maxLatency + processingDelay;
  const exchangeLifetime = maxTransmitSpan + 2 * p.maxLatency + processingDelay;
  const nonLifetime = maxTransmitSpan + p.maxLatency;
  return { maxTransmitSpan, maxTransmitWait, processingDelay, maxRtt, exchangeLifetime, nonLifetime };
}
