// Virtual networks: list, create, show (ports and counters), delete, and a live capture as a pcap stream.
// A network belongs to its owner; admins see all and may share one with everybody. Someone else's unshared network
// is "not found" to an ordinary user.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { forbidden, OrielError } from '../../errors.ts';
import { pcapHeader, pcapRecord } from '../../network/pcap.ts';
import { requireUser } from '../auth/plugin.ts';
import type { ServerContext } from '../context.ts';
import {
  captureQuery, errorSchema, forwardCreateSchema, forwardParams, forwardSchema, networkCreateSchema,
  networkParams as params, networkSchema, noContentSchema, vmParams,
} from '../../api/index.ts';
import { forwardView as fwView, networkView } from '../views.ts';
import { vmFor } from './vms.ts';

/** Captures one user may run at once. */
const MAX_CAPTURES_PER_USER = 4;
/** A capture's client that reads slower than the network carries loses frames beyond this much buffered. */
const CAPTURE_BUFFER_BYTES = 8 * 1024 * 1024;

export function networkRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const nets = ctx.networks;
  const vmName = (id: string) => ctx.vms.records.get(id)?.name ?? id;
  const view = (n: Parameters<typeof networkView>[0]) => networkView(n, nets, ctx.users, vmName);

  r.get('/api/networks', {
    schema: { tags: ['networks'], summary: 'Networks I own and shared ones (admins: all)',
      response: { 200: z.array(networkSchema) } },
  }, async (req) => nets.visibleTo(requireUser(req)).map(view));

  r.post('/api/networks', {
    schema: { tags: ['networks'], summary: 'Create a network', body: networkCreateSchema,
      response: { 201: networkSchema, 400: errorSchema, 403: errorSchema, 409: errorSchema } },
  }, async (req, reply) => {
    const n = nets.create(requireUser(req), { ...req.body });
    req.log.info({ network: n.name, subnet: n.subnet }, 'network created');
    return reply.code(201).send(view(n));
  });

  r.get('/api/networks/:net', {
    schema: { tags: ['networks'], summary: 'One network, its VMs\' leases and per-port counters', params,
      response: { 200: networkSchema, 404: errorSchema } },
  }, async (req) => view(nets.get(req.params.net, requireUser(req))));

  r.delete('/api/networks/:net', {
    schema: { tags: ['networks'], summary: 'Delete a network no VM uses', params,
      response: { 204: noContentSchema, 404: errorSchema, 409: errorSchema } },
  }, async (req, reply) => {
    nets.delete(req.params.net, requireUser(req));
    return reply.code(204).send(null);
  });

  const open = new Map<string, number>();
  r.get('/api/networks/:net/capture', {
    schema: {
      tags: ['networks'],
      summary: 'Live capture of the network\'s frames as a pcap stream (owner or admin), until the time or count',
      params,
      querystring: captureQuery,
    },
  }, (req, reply) => {
    const user = requireUser(req);
    const n = nets.get(req.params.net, user);
    if (user.role !== 'admin' && n.ownerId !== user.id)
      throw forbidden(`only the owner of network '${n.name}' or an admin may capture its traffic`);
    const mine = open.get(user.id) ?? 0;
    if (mine >= MAX_CAPTURES_PER_USER)
      throw new OrielError(429, `too many captures running for this user (${MAX_CAPTURES_PER_USER})`, 'too_many');
    open.set(user.id, mine + 1);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'application/vnd.tcpdump.pcap',
      'content-disposition': `attachment; filename="${n.name}.pcap"`,
      'cache-control': 'no-store',
    });
    res.write(pcapHeader());
    let count = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      stop();
      clearTimeout(timer);
      open.set(user.id, (open.get(user.id) ?? 1) - 1);
      res.end();
    };
    const stop = nets.switch.capture(n.id, (frame, at) => {
      if (done || res.writableLength > CAPTURE_BUFFER_BYTES) return;
      res.write(pcapRecord(frame, at));
      if (req.query.frames !== undefined && ++count >= req.query.frames) finish();
    });
    const timer = setTimeout(finish, req.query.seconds * 1000);
    req.raw.on('close', finish);
    res.on('close', finish);
  });

  r.get('/api/vms/:vm/forwards', {
    schema: { tags: ['networks'], summary: 'Host ports that reach this VM', params: vmParams,
      response: { 200: z.array(forwardSchema) } },
  }, async (req) => ctx.forwards.list(vmFor(ctx, req, req.params.vm).id).map(fwView));

  r.post('/api/vms/:vm/forwards', {
    schema: {
      tags: ['networks'],
      summary: 'Forward a port of the host\'s loopback to a guest port (the VM needs a card on a --nat network)',
      params: vmParams,
      body: forwardCreateSchema,
      response: { 201: forwardSchema, 400: errorSchema, 409: errorSchema },
    },
  }, async (req, reply) => {
    const f = await ctx.forwards.add(vmFor(ctx, req, req.params.vm), req.body);
    return reply.code(201).send(fwView(f));
  });

  r.delete('/api/vms/:vm/forwards/:proto/:hostPort', {
    schema: {
      tags: ['networks'], summary: 'Stop forwarding a host port',
      params: forwardParams,
      response: { 204: noContentSchema, 404: errorSchema },
    },
  }, async (req, reply) => {
    ctx.forwards.remove(vmFor(ctx, req, req.params.vm), req.params.proto, req.params.hostPort);
    return reply.code(204).send(null);
  });
}
