/**
 * What the OMA DM layer needs of the SMS layer (issue 15), declared here as a port: the SMS
 * layer (src/sms/, Kannel with a durable outbox) implements it and the app wires the two
 * together. The DM side hands over a WAP Push (WAP-251-PushMessage over WDP port 2948, a WSP
 * push PDU whose Content-Type may carry the SEC and MAC parameters of OMA-WAP-ProvBoot §5.4)
 * and later hears of its delivery reports; it knows nothing of UDH, concatenation or Kannel.
 */

/** The security methods of OMA-WAP-ProvBoot §5.4 (the WSP Content-Type parameter SEC). */
export type PushSecurity = 'NETWPIN' | 'USERPIN' | 'USERNETWPIN' | 'USERPINMAC';

export interface WapPushMessage {
  /** The handset's number, E.164 with "+" (the SMS layer owns its formats and refusals). */
  readonly to: string;
  /** The WSP content type of the body, e.g. application/vnd.syncml.notification. */
  readonly contentType: string;
  /** Content-Type parameters: SEC and the 40 hex digit MAC of a provisioning document. */
  readonly parameters?: { readonly SEC?: PushSecurity; readonly MAC?: string };
  /** X-WAP-Application-Id, e.g. x-wap-application:syncml.dm (WINA registry 0x07). */
  readonly applicationId?: string;
  readonly body: Uint8Array;
  /** The same key twice is the same push: the outbox sends it once (a retried bootstrap step). */
  readonly idempotencyKey: string;
}

export interface WapPushSender {
  /** Stores the push durably and queues it; resolves with the outbox id its delivery reports name. */
  push(message: WapPushMessage): Promise<{ readonly id: string }>;
}

/** A delivery report of a push, as the SMS layer learned it from the SMSC (Kannel's dlr-url callback). */
export interface PushDeliveryReport {
  /** The id push() returned. */
  readonly id: string;
  /** delivered: the handset has it; failed: the SMSC gave up; buffered: still trying (informative). */
  readonly status: 'delivered' | 'failed' | 'buffered';
  readonly at: number;
  /** Free text from the SMSC, already bounded and printable. */
  readonly detail?: string;
}

/** The receiving side: the SMS layer calls it for every delivery report of a push this layer sent. */
export interface PushDeliveryListener {
  onDeliveryReport(report: PushDeliveryReport): Promise<void>;
}

/** Content types and application ids of the pushes this layer sends (OMNA WSP and push registries). */
export const PushContentType = {
  /** OMA-TS-DM_Notification-V1_2 §8: the package #0 trigger (WSP well-known 0x44). */
  DmNotification: 'application/vnd.syncml.notification',
  /** OMA-WAP-ProvCont: the WBXML provisioning document (WSP well-known 0x36). */
  ProvisioningWbxml: 'application/vnd.wap.connectivity-wbxml',
} as const;

export const PushApplicationId = {
  /** x-wap-application:syncml.dm (push application id 0x07): the device's DM client. */
  SyncMLDm: 'x-wap-application:syncml.dm',
} as const;
