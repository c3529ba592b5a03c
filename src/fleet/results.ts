/**
 * What each Object 9 Update Result (seed spec §5.1.2, rid 9) means to an operator, and what
 * the install driver does about it. Both encodings decode to the same names
 * (interpretDeviceReport in src/lwm2m/objects/software-management/encoding.ts).
 */
import type { UpdateResult } from '../lwm2m/objects/software-management/model.js';
import type { InstallRetry } from './domain.js';

export interface ResultAdvice {
  /** One sentence for the operator. */
  readonly message: string;
  /**
   * retry-resume: transient transfer failure, try again (the package endpoint serves any
   * block, so a device that kept its partial download resumes); retry: may succeed later
   * as is; no-retry: the same bytes/URI will fail the same way, fix the cause first.
   */
  readonly retry: InstallRetry | null;
  /** Whether the driver retries by itself (within its attempt budget). */
  readonly automatic: boolean;
}

export const RESULT_ADVICE: Readonly<Record<UpdateResult, ResultAdvice>> = {
  INITIAL: { message: 'No result yet.', retry: null, automatic: false },
  DOWNLOADING: { message: 'The device is downloading the package.', retry: null, automatic: false },
  INSTALLED: { message: 'The software was installed successfully.', retry: null, automatic: false },
  DOWNLOADED_VERIFIED: { message: 'The package was downloaded and verified.', retry: null, automatic: false },
  NOT_ENOUGH_STORAGE: {
    message: 'The device has not enough storage for this package: free space on the device (or uninstall something) before trying again.',
    retry: 'no-retry',
    automatic: false,
  },
  OUT_OF_MEMORY: { message: 'The device ran out of memory while downloading; retrying later may work.', retry: 'retry', automatic: true },
  CONNECTION_LOST: { message: 'The download was interrupted (connection lost); retried, resuming where the device supports it.', retry: 'retry-resume', automatic: true },
  INTEGRITY_FAILURE: {
    message: 'The device rejected the package: integrity check failed (damaged bytes, or a signature the device does not trust). Do not retry the same bytes: re-sign or rebuild the package.',
    retry: 'no-retry',
    automatic: false,
  },
  UNSUPPORTED_PACKAGE_TYPE: { message: 'The device does not support this package type: build a package for this device.', retry: 'no-retry', automatic: false },
  INVALID_URI: {
    message: 'The device could not use the package URI (check --public-host and that the device can reach Depot\'s CoAP port).',
    retry: 'no-retry',
    automatic: false,
  },
  DEVICE_ERROR: { message: 'The device reported a device-specific error during the update; retrying may work.', retry: 'retry', automatic: true },
  INSTALL_FAILURE: { message: 'The installation failed on the device (its previous software is kept); look at the device, then retry the install.', retry: 'retry', automatic: false },
  UNINSTALL_FAILURE: { message: 'Uninstalling the previous version for the update failed on the device.', retry: 'retry', automatic: false },
};

/** Whether a decoded Update Result is a failure (seed §5.1.2: 3..10, registry 50..59). */
export function isFailure(result: UpdateResult): boolean {
  return RESULT_ADVICE[result].retry !== null;
}
