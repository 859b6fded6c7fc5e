// Node byte transports for the SPICE core: one net.Socket per channel, unix socket or TCP.
import { connect, type Socket } from 'node:net';
import type { Connector, Transport, TransportHandler } from '../spice/index.ts';

export function socketTransport(socket: Socket): Transport {
  return {
    start(handler: TransportHandler): void {
      socket.on('data', (chunk: Buffer) =>
        handler.data(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)),
      );
      socket.on('error', (e) => handler.closed(e));
      socket.on('close', () => handler.closed());
    },
    write(bytes: Uint8Array): void {
      if (!socket.destroyed) socket.write(bytes);
    },
    close(): void {
      socket.destroy();
    },
    bufferedAmount: () => socket.writableLength,
  };
}

function open(options: { path: string } | { host: string; port: number }): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const socket = connect(options);
    socket.setNoDelay(true);
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socketTransport(socket));
    });
  });
}

/** Every channel connects to the same unix socket (QEMU `-spice unix=on,addr=PATH`). */
export function unixConnector(path: string): Connector {
  return () => open({ path });
}

export function tcpConnector(host: string, port: number): Connector {
  return () => open({ host, port });
}
