// What the usbredir host needs from a USB device: a virtual one written in TypeScript (mass-storage.ts), a real one
// behind libusb (Node) or WebUSB (browser). Transfers resolve with a usbredir status (UsbStatus); a device never
// throws for a failed transfer, it answers STALL or IOERROR.
import type { DeviceConnect, EndpointInfo, InterfaceInfo } from './protocol.ts';

export interface ControlSetup {
  requestType: number;
  request: number;
  value: number;
  index: number;
  /** wLength: bytes asked for (IN) or carried (OUT). */
  length: number;
}

export interface TransferResult {
  status: number;
  /** IN transfers: the bytes read (at most the length asked for). */
  data?: Uint8Array;
  /** OUT transfers: bytes taken (default: all on success, none otherwise). */
  written?: number;
}

export interface UsbDevice {
  /** The device_connect fields: speed, class, vendor/product ids, bcdDevice. */
  readonly connectInfo: DeviceConnect;
  /** Interfaces of the current configuration. */
  interfaces(): InterfaceInfo[];
  /** Endpoints of the current configuration and alt settings, indexed by usbredir slot (epSlot). */
  endpoints(): (EndpointInfo | undefined)[];
  /** A control transfer on endpoint 0; `data` for OUT transfers. */
  control(setup: ControlSetup, data?: Uint8Array): Promise<TransferResult>;
  /** A bulk transfer: IN (endpoint & 0x80) asks for `length` bytes; OUT carries `data`. */
  bulk(endpoint: number, length: number, data?: Uint8Array): Promise<TransferResult>;
  /** An interrupt transfer, same shape as bulk (devices without interrupt endpoints answer STALL). */
  interrupt?(endpoint: number, length: number, data?: Uint8Array): Promise<TransferResult>;
  setConfiguration(value: number): Promise<number>;
  readonly configuration: number;
  setAltSetting(iface: number, alt: number): Promise<number>;
  altSetting(iface: number): number;
  /** A USB port reset. */
  reset(): Promise<void>;
  /** Releases the device (closes the file, the libusb handle…). */
  close(): Promise<void>;
}
