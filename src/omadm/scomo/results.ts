/**
 * What each SCOMO result code (OMA-TS-DM-SCOMO-V1_0 "Result Codes", reported in the Generic
 * Alert's Data) means to an operator, and whether trying again can help. The retry values are
 * those of Object 9's advice (src/fleet/results.ts), so an operator reads both the same way:
 * retry (may succeed later as is), retry-resume (a transfer failure: the download link serves
 * Range, so a device that kept its partial download resumes), no-retry (fix the cause first).
 */
import type { InstallRetry } from '../../fleet/domain.js';

export interface ScomoResultAdvice {
  /** Short stable name, stored with the job. */
  readonly name: string;
  /** One sentence for the operator. */
  readonly message: string;
  readonly retry: InstallRetry | null;
}

const TABLE: Readonly<Record<number, ScomoResultAdvice>> = {
  1200: { name: 'SUCCESSFUL', message: 'The device completed the operation.', retry: null },
  1400: { name: 'CLIENT_ERROR', message: 'The device refused the operation because of its user or its state; look at the device, then retry.', retry: 'retry' },
  1401: { name: 'USER_CANCELLED', message: 'The phone\'s user declined the operation when asked. Retry when the user agrees (or ask with a clearer prompt).', retry: 'retry' },
  1402: { name: 'DOWNLOAD_FAILED', message: 'The device could not download the package (check that it reaches Depot\'s OMA DM HTTPS port and trusts its certificate); retried, resuming where the device supports it.', retry: 'retry-resume' },
  1403: { name: 'DOWNLOAD_AUTH_FAILED', message: 'The download server asked the device for authentication and refused it: the one-time link may have expired; retry to issue a new one.', retry: 'retry' },
  1404: { name: 'DOWNLOAD_OUT_OF_MEMORY', message: 'The device has not enough space to store the package: free space on the device before trying again.', retry: 'no-retry' },
  1405: { name: 'INSTALL_FAILED', message: 'The installation failed on the device; look at the device, then retry the install.', retry: 'retry' },
  1406: { name: 'INSTALL_OUT_OF_MEMORY', message: 'The device has not enough memory to install the package: free space on the device before trying again.', retry: 'no-retry' },
  1407: { name: 'PACKAGE_VALIDATION_FAILED', message: 'The device rejected the package\'s signature or integrity: do not retry the same bytes; re-sign or rebuild the package.', retry: 'no-retry' },
  1408: { name: 'REMOVE_FAILED', message: 'Removing the software component failed on the device.', retry: 'retry' },
  1409: { name: 'ACTIVATE_FAILED', message: 'Activating the software component failed on the device.', retry: 'retry' },
  1410: { name: 'DEACTIVATE_FAILED', message: 'Deactivating the software component failed on the device.', retry: 'retry' },
  1411: { name: 'NOT_IMPLEMENTED', message: 'The device does not implement this SCOMO operation: use another install method for this model.', retry: 'no-retry' },
  1412: { name: 'UNDEFINED_ERROR', message: 'The device reported an unspecified error; retrying may work.', retry: 'retry' },
  1413: { name: 'OPERATION_REJECTED', message: 'The device does not support this package\'s target environment: build a package for this device.', retry: 'no-retry' },
  1500: { name: 'DOWNLOAD_SERVER_ERROR', message: 'The download server answered the device with an error; check Depot\'s log for the package link, then retry.', retry: 'retry-resume' },
  1501: { name: 'DOWNLOAD_SERVER_UNAVAILABLE', message: 'The device could not reach the download server; retried, resuming where the device supports it.', retry: 'retry-resume' },
};

/** The advice for a SCOMO result code, including the vendor ranges (1250-1299, 1450-1499, 1550-1599). */
export function scomoResultAdvice(code: number): ScomoResultAdvice {
  const known = TABLE[code];
  if (known !== undefined) return known;
  if (code >= 1250 && code <= 1299) return { name: 'SUCCESSFUL_VENDOR', message: `The device completed the operation (vendor result ${code}).`, retry: null };
  if (code >= 1450 && code <= 1499) return { name: 'CLIENT_ERROR_VENDOR', message: `The device failed the operation with vendor-specific error ${code}; see the vendor's documentation, then retry.`, retry: 'retry' };
  if (code >= 1550 && code <= 1599) return { name: 'DOWNLOAD_SERVER_ERROR_VENDOR', message: `The download failed with vendor-specific server error ${code}; retrying may work.`, retry: 'retry-resume' };
  return { name: 'UNKNOWN_RESULT', message: `The device reported result code ${code}, which SCOMO 1.0 does not define; treat it as a failure and look at the device.`, retry: 'retry' };
}

/** 1200 and the vendor success range (SCOMO "Result Codes": 12xx is success). */
export function isScomoSuccess(code: number): boolean {
  return code === 1200 || (code >= 1250 && code <= 1299);
}

/** Every code SCOMO 1.0 names (for tests and documentation). */
export const SCOMO_RESULT_CODES: readonly number[] = Object.keys(TABLE).map(Number);
