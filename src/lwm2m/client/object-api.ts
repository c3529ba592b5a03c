/**
 * The small interface an object implementation offers the LwM2M client engine.
 * The engine does paths, content formats, CoAP codes and observation; an object only
 * answers in terms of instances, resources and typed values (src/lwm2m/values.ts).
 */
import type { InstanceNode, ResourceNode } from '../node.js';

/** Failure codes an object operation may end with (CoAP response codes, TS Core 1.1 §6.x tables). */
export type ObjectErrorCode = '4.00' | '4.01' | '4.04' | '4.05' | '4.06' | '4.08' | '4.13' | '4.15' | '5.00';

/** Thrown (or rejected) by object operations; the engine turns it into the CoAP response code. */
export class ObjectError extends Error {
  override readonly name = 'ObjectError';
  constructor(
    readonly code: ObjectErrorCode,
    message: string,
    /** With 4.13: the largest body accepted (Size1). */
    readonly size1?: number,
  ) {
    super(message);
  }
}

/** Who is asking: the Bootstrap-Server (during bootstrap) may touch what a DM server may not. */
export interface AccessContext {
  readonly bootstrap: boolean;
}

export const DM_ACCESS: AccessContext = Object.freeze({ bootstrap: false });
export const BOOTSTRAP_ACCESS: AccessContext = Object.freeze({ bootstrap: true });

/** What changed in an object, told to the engine for Observe and registration updates. */
export interface ObjectChange {
  /** The instance whose values changed (absent: the whole object). */
  readonly iid?: number;
  /** The resources that changed (absent: any in the instance). */
  readonly rids?: readonly number[];
  /** Instances were created or deleted (the registration's object list changed). */
  readonly instancesChanged?: boolean;
  /**
   * The device's set of supported objects changed (e.g. Object 9 installed software with
   * Update Supported Objects set): the engine sends a registration Update with a new link body.
   */
  readonly objectsChanged?: boolean;
}

export type ObjectChangeListener = (change: ObjectChange) => void;

/** Write semantics (TS Core 1.1 §6.3.3): Replace (PUT) or Partial Update (POST). */
export type WriteMode = 'replace' | 'update';

export interface ClientObject {
  readonly id: number;
  /** Object version for the registration link (`ver=`), when not 1.0. */
  readonly version?: string;
  /** Instance ids, ascending. */
  instanceIds(): number[];
  /** Resource ids present in an instance (Discover), readable or not. Throws 4.04 for a missing instance. */
  resourceIds(iid: number): number[];
  /** Reads one resource. Throws ObjectError 4.04 (absent), 4.05 (not readable). */
  readResource(iid: number, rid: number, ctx: AccessContext): ResourceNode;
  /** Reads the readable resources of an instance. Throws 4.04 for a missing instance. */
  readInstance(iid: number, ctx: AccessContext): InstanceNode;
  /**
   * Writes resources of an instance. 'replace' at instance level replaces the instance's
   * writable resources; a multiple resource given as a node is replaced as a whole in either mode.
   * Throws 4.04 (instance or resource absent), 4.05 (not writable), 4.00 (bad value).
   */
  write(iid: number, resources: readonly ResourceNode[], mode: WriteMode, ctx: AccessContext): void | Promise<void>;
  /** Executes a resource with the (TS Core 1.1 §5.4.5) argument text. Throws 4.04 / 4.05 / 4.00. */
  execute(iid: number, rid: number, args: string, ctx: AccessContext): void | Promise<void>;
  /** Creates an instance (the lowest free id when `iid` is undefined); returns its id. Throws 4.05 when not supported, 4.00 if it exists. */
  create(iid: number | undefined, resources: readonly ResourceNode[], ctx: AccessContext): number | Promise<number>;
  /** Deletes an instance. Throws 4.04 (absent), 4.05 (not allowed). */
  delete(iid: number, ctx: AccessContext): void | Promise<void>;
  /** Subscribes to value and instance changes; returns the unsubscribe function. */
  subscribe(listener: ObjectChangeListener): () => void;
  /**
   * Optional: streams a block-wise (Block1) opaque Write of one resource as it arrives (e.g. the
   * Object 9 Package), instead of the engine buffering the whole body. Undefined: buffer.
   */
  openUpload?(iid: number, rid: number, ctx: AccessContext): UploadTarget | undefined;
}

/** Receives an opaque body block by block, in order. */
export interface UploadTarget {
  /** One chunk at `offset`; may throw ObjectError (the engine answers it when the transfer ends). */
  write(chunk: Uint8Array, offset: number): Promise<void>;
  /** The body is complete; throws ObjectError for a failed Write. */
  end(): Promise<void>;
  /** The transfer was given up (timeout, restart). */
  abort(reason: string): void;
}
