import { ClusteredIds } from '../../util/clustered-id.js';

/**
 * Registration ids, the location a device updates: 12 base64url characters, a time prefix and
 * 48 random bits (util/clustered-id.ts), so that the registrations made in one burst share
 * pages of the id index. Not an authenticator: an Update or De-register is accepted only from
 * the registering identity (DTLS) or address (plain CoAP).
 */
export class RegistrationIds extends ClusteredIds {}
