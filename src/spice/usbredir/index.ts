// USB redirection (usbredir over SPICE spicevmc channels): the protocol, the usb-host end, a virtual USB stick.
export { UsbredirChannel, USBREDIR_CLIENT_CAPS } from './channel.ts';
export { UsbredirHost, UsbDeviceRefused } from './host.ts';
export { UsbredirParser, UsbredirProtocolError, type PeerHello } from './parser.ts';
export {
  EpType, HOST_CAPS, UsbSpeed, UsbStatus, UsbredirCap, UsbredirType, epSlot, slotEp,
  type BulkHeader, type ControlHeader, type DeviceConnect, type EndpointInfo, type InterfaceInfo, type UsbredirPacket,
} from './protocol.ts';
export type { ControlSetup, TransferResult, UsbDevice } from './device.ts';
export { MassStorageDevice, EP_IN, EP_OUT, type MassStorageOptions } from './mass-storage.ts';
export { BLOCK, ScsiDisk, type BlockDevice, type Sense, type StickIdentity } from './scsi.ts';
export { MemoryDisk } from './memory-disk.ts';
export { filterAllows, parseFilterRules, type FilterRule } from './filter.ts';
export { WebUsbDevice, webUsbSetup, type WebUsbDeviceLike } from './webusb.ts';
