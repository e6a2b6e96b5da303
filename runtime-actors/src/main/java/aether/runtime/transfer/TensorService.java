package aether.runtime.transfer;

import aether.runtime.exchange.ExchangeChannels;
import aether.runtime.exchange.ExchangeNode;
import aether.runtime.exchange.TensorDescriptor;
import aether.runtime.exchange.TensorReceiver;
import aether.runtime.exchange.TensorSender;
import aether.runtime.exchange.TensorTransferException;
import aether.runtime.protocol.CborSerializable;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.zip.CRC32C;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/**
 * Serves this node's {@link TensorStore} to the cluster and pulls other nodes' tensors into it. One per node,
 * registered with the Receptionist under {@link #KEY}; it finds its peers there too (a node whose service drops out of
 * the listing, because it became unreachable or left, fails the pulls from it at once).
 *
 * <p>A {@link Pull} of a tensor held elsewhere sends the holder a {@link Fetch} naming this node's {@link Inbox}; the
 * holder answers {@link FetchAccepted} (with the transport it chose: IPC if both share a host, UDP otherwise) or
 * {@link FetchRefused}, and streams the bytes over Aeron under a wire id the requester chose, so concurrent transfers
 * never mix. The bytes land in memory the store owns; the reply is the tensor's descriptor located here, and in-process
 * code reads the bytes from the store. A {@link Push} is a pull that the target node runs against this one. Every
 * failure (not stored, no route, refused, checksum, timeout, holder gone) answers {@link PullFailed} naming the node.
 *
 * <p>Never blocks: Aeron senders are created, IPC clients connected and checksums computed on a blocking executor,
 * and results come back through {@code pipeToSelf}.
 */
public final class TensorService extends AbstractBehavior<TensorService.Command> {

    public static final ServiceKey<Command> KEY = ServiceKey.create(Command.class, "aether-tensor-service");

    public sealed interface Command extends CborSerializable {}

    /** Bring {@code source}'s bytes into this node's store. Answers {@link Pulled} or {@link PullFailed}. */
    public record Pull(TensorDescriptor source, ActorRef<PullReply> replyTo) implements Command {}

    /** Have {@code target} pull tensor {@code tensorId}/{@code version} from this node. {@code target} answers. */
    public record Push(long tensorId, long version, ActorRef<Command> target, ActorRef<PullReply> replyTo)
            implements Command {}

    /** Node-to-node: send the stored tensor's bytes to {@code inbox} under {@code wireId}; answer {@code requester}. */
    public record Fetch(long tensorId, long version, long wireId, Inbox inbox, ActorRef<Command> requester)
            implements Command {}

    /** The holder sends the bytes of fetch {@code wireId} over {@code transport}. */
    public record FetchAccepted(long wireId, Transport transport) implements Command {}

    /** The holder will not send (or could not finish sending) the bytes of fetch {@code wireId}. */
    public record FetchRefused(long wireId, String nodeId, String reason) implements Command {}

    /** The CRC32C of a stored tensor's bytes, computed where they are. Answers {@link ChecksumReply}. */
    public record Checksum(long tensorId, long version, ActorRef<ChecksumReply> replyTo) implements Command {}

    /** Removes the tensor version from this node's store (after the sends of it in flight). */
    public record Release(long tensorId, long version) implements Command {}

    /** Answers {@link TransferStats}: what this node's service has moved so far. */
    public record GetStats(ActorRef<TransferStats> replyTo) implements Command {}

    /**
     * Counters since the service started (they only grow): tensors (and bytes) this node pulled in and sent out, by
     * transport, and pulls that failed.
     */
    public record TransferStats(String nodeId, long pulledIpc, long pulledUdp, long bytesInIpc, long bytesInUdp,
            long sentIpc, long sentUdp, long bytesOutIpc, long bytesOutUdp, long pullsFailed)
            implements CborSerializable {}

    public sealed interface PullReply extends CborSerializable {}

    /** The tensor is in {@code tensor.location().nodeId()}'s store; {@code transport} is null if it already was. */
    public record Pulled(TensorDescriptor tensor, String fromNode, Transport transport) implements PullReply {}

    /** The pull failed; {@code nodeId} is the node at fault (the holder, or this node when it has no route). */
    public record PullFailed(long tensorId, long version, String nodeId, String reason) implements PullReply {}

    /** {@code present} false (and the other fields 0) when the node does not hold that tensor version. */
    public record ChecksumReply(long tensorId, long version, String nodeId, boolean present, long byteLength,
            int crc32c) implements CborSerializable {}

    private record PeersChanged(Receptionist.Listing listing) implements Command, NoSerializationVerificationNeeded {}

    private record AnswerTimedOut(long wireId) implements Command, NoSerializationVerificationNeeded {}

    private record Received(long wireId, Transport transport, MemorySegment data, Throwable error)
            implements Command, NoSerializationVerificationNeeded {}

    private record SenderReady(String senderKey, TensorSender sender, Throwable error)
            implements Command, NoSerializationVerificationNeeded {}

    private record Sent(Fetch fetch, String senderKey, Transport transport, long bytes, Throwable error)
            implements Command, NoSerializationVerificationNeeded {}

    private record Summed(Checksum request, long byteLength, int crc) implements Command, NoSerializationVerificationNeeded {}

    private record Key(long tensorId, long version) {}

    /** A pull in flight: everybody waiting for it, and the holder it comes from. */
    private static final class PendingPull {
        final TensorDescriptor source;
        final String holder;
        final long wireId;
        final List<ActorRef<PullReply>> waiters = new ArrayList<>(1);
        boolean fetchSent;
        Transport transport;

        PendingPull(TensorDescriptor source, String holder, long wireId) {
            this.source = source;
            this.holder = holder;
            this.wireId = wireId;
        }
    }

    private final TimerScheduler<Command> timers;
    private final TensorStore store;
    private final TensorSource others;
    private final ExchangeNode exchange;
    private final TransferSettings settings;
    private final String nodeId;
    private final String hostId;
    private final Inbox inbox;
    private final TensorReceiver ipcInbox;
    private final TensorReceiver udpInbox;
    /** Destinations of incoming transfers by wire id: allocated on the exchange thread, owned by the store once done. */
    private final ConcurrentHashMap<Long, Arena> incoming = new ConcurrentHashMap<>();
    private final ExecutorService blocking = Executors.newThreadPerTaskExecutor(
            Thread.ofVirtual().name("aether-transfer-", 0).factory());
    /** Media-driver clients for peers on this host, by driver directory; touched only on the blocking executor. */
    private final ConcurrentHashMap<String, ExchangeNode> ipcClients = new ConcurrentHashMap<>();
    private final Map<String, ActorRef<Command>> peers = new HashMap<>();
    /** The media driver directory of each peer this node sends to over IPC. */
    private final Map<String, String> ipcDirs = new HashMap<>();
    /** Nodes whose service left the listing (unreachable or gone), most recent last; bounded. */
    private final java.util.LinkedHashSet<String> gone = new java.util.LinkedHashSet<>();
    private final Map<Key, PendingPull> pulls = new HashMap<>();
    private final Map<Long, Key> pullsByWire = new HashMap<>();
    private final Map<String, TensorSender> senders = new HashMap<>();
    private final Map<String, List<Fetch>> awaitingSender = new HashMap<>();
    private final Map<Key, Integer> sending = new HashMap<>();
    private final Set<Key> releaseAfterSend = new java.util.HashSet<>();
    private long nextWireId = 1;
    private long pulledIpc, pulledUdp, bytesInIpc, bytesInUdp, sentIpc, sentUdp, bytesOutIpc, bytesOutUdp, pullsFailed;

    public static Behavior<Command> create(TensorStore store, ExchangeNode exchange, TransferSettings settings) {
        return create(store, TensorSource.NONE, exchange, settings);
    }

    /**
     * @param store    this node's tensors: served to peers, and where pulled tensors go
     * @param others   more tensors this node serves (looked up after {@code store}), e.g. device workers' outputs
     * @param exchange this node's exchange; the service makes its inbox receivers on it
     */
    public static Behavior<Command> create(TensorStore store, TensorSource others, ExchangeNode exchange,
            TransferSettings settings) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new TensorService(ctx, timers, store, others,
                exchange, settings)));
    }

    private TensorService(ActorContext<Command> context, TimerScheduler<Command> timers, TensorStore store,
            TensorSource others, ExchangeNode exchange, TransferSettings settings) {
        super(context);
        this.timers = timers;
        this.store = store;
        this.others = others;
        this.exchange = exchange;
        this.settings = settings;
        this.nodeId = NodeIds.of(context.getSystem());
        if (!nodeId.equals(store.nodeId())) {
            throw new IllegalArgumentException("store belongs to node %s (expected: this node, %s)"
                    .formatted(store.nodeId(), nodeId));
        }
        this.hostId = HostIdentity.current();
        var allocator = (aether.runtime.exchange.TensorAllocator) (wireId, version, byteLength) -> {
            Arena arena = Arena.ofShared();
            incoming.put(wireId, arena);
            return arena.allocate(Math.max(byteLength, 1), 64).asSlice(0, byteLength);
        };
        boolean ipc = settings.transport() != Transport.UDP;
        boolean udp = settings.transport() != Transport.IPC;
        // Receivers are made once, at startup: making them blocks briefly while the driver sets them up.
        this.ipcInbox = ipc ? exchange.newReceiver(ExchangeChannels.ipc(), settings.ipcStreamId(), allocator) : null;
        this.udpInbox = udp ? exchange.newReceiver(ExchangeChannels.udp(settings.udpHost(), settings.udpPort()),
                settings.udpStreamId(), allocator) : null;
        this.inbox = new Inbox(nodeId, hostId, ipc ? exchange.aeronDirectory() : null, settings.ipcStreamId(),
                udp ? settings.udpHost() : null, udp ? settings.udpPort() : 0, settings.udpStreamId());
        context.getSystem().receptionist().tell(Receptionist.register(KEY, context.getSelf()));
        context.getSystem().receptionist().tell(Receptionist.subscribe(KEY,
                context.messageAdapter(Receptionist.Listing.class, PeersChanged::new)));
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(Command.class, this::on)
                .onSignal(PostStop.class, s -> onStop())
                .build();
    }

    private Behavior<Command> on(Command message) {
        return switch (message) {
            case Pull p -> onPull(p);
            case Push p -> onPush(p);
            case Fetch f -> onFetch(f);
            case FetchAccepted a -> onAccepted(a);
            case FetchRefused r -> onRefused(r);
            case Checksum c -> onChecksum(c);
            case Release r -> onRelease(r);
            case GetStats g -> onGetStats(g);
            case PeersChanged p -> onPeers(p.listing());
            case AnswerTimedOut t -> onAnswerTimeout(t);
            case Received r -> onReceived(r);
            case SenderReady s -> onSenderReady(s);
            case Sent s -> onSent(s);
            case Summed s -> onSummed(s);
        };
    }

    // ---- requester side ----------------------------------------------------------------------------------------

    private Behavior<Command> onPull(Pull pull) {
        TensorDescriptor source = pull.source();
        Key key = new Key(source.tensorId(), source.version());
        var here = store.get(key.tensorId(), key.version());
        if (here.isPresent()) {
            pull.replyTo().tell(new Pulled(here.get().descriptor(), nodeId, null));
            return this;
        }
        String holder = source.location().nodeId();
        if (holder.equals(nodeId) && others.find(key.tensorId(), key.version()) != null) {
            pull.replyTo().tell(new Pulled(store.locatedHere(source), nodeId, null));
            return this;
        }
        if (holder.equals(nodeId)) {
            pull.replyTo().tell(new PullFailed(key.tensorId(), key.version(), nodeId,
                    "tensor %d v%d is not stored on %s".formatted(key.tensorId(), key.version(), nodeId)));
            return this;
        }
        PendingPull pending = pulls.get(key);
        if (pending != null) {
            pending.waiters.add(pull.replyTo());
            return this;
        }
        if (!peers.containsKey(holder) && gone.contains(holder)) {
            pull.replyTo().tell(new PullFailed(key.tensorId(), key.version(), holder,
                    "tensor %d v%d: node %s is not reachable (it became unreachable or left the cluster)"
                            .formatted(key.tensorId(), key.version(), holder)));
            return this;
        }
        pending = new PendingPull(source, holder, nextWireId++);
        pending.waiters.add(pull.replyTo());
        pulls.put(key, pending);
        pullsByWire.put(pending.wireId, key);
        timers.startSingleTimer(pending.wireId, new AnswerTimedOut(pending.wireId), settings.answerTimeout());
        ActorRef<Command> peer = peers.get(holder);
        if (peer != null) {
            fetch(pending, peer);
        }   // else the holder's service is not (yet) in this node's listing: fetch when it shows up, or time out
        return this;
    }

    private void fetch(PendingPull pending, ActorRef<Command> holder) {
        pending.fetchSent = true;
        holder.tell(new Fetch(pending.source.tensorId(), pending.source.version(), pending.wireId, inbox,
                getContext().getSelf()));
    }

    private Behavior<Command> onPush(Push push) {
        var stored = store.get(push.tensorId(), push.version());
        if (stored.isEmpty()) {
            push.replyTo().tell(new PullFailed(push.tensorId(), push.version(), nodeId,
                    "tensor %d v%d is not stored on %s".formatted(push.tensorId(), push.version(), nodeId)));
        } else {
            push.target().tell(new Pull(stored.get().descriptor(), push.replyTo()));
        }
        return this;
    }

    private Behavior<Command> onAccepted(FetchAccepted accepted) {
        PendingPull pending = pendingByWire(accepted.wireId());
        if (pending == null || pending.transport != null) {
            return this;
        }
        timers.cancel(accepted.wireId());
        TensorReceiver receiver = accepted.transport() == Transport.IPC ? ipcInbox : udpInbox;
        if (receiver == null) {
            fail(pending, pending.holder, "%s chose %s, which this node does not receive on"
                    .formatted(pending.holder, accepted.transport()));
            return this;
        }
        pending.transport = accepted.transport();
        long wireId = accepted.wireId();
        Transport transport = accepted.transport();
        getContext().pipeToSelf(receiver.expect(wireId, pending.source.version(), settings.transferTimeout()),
                (data, error) -> new Received(wireId, transport, data, error));
        return this;
    }

    private Behavior<Command> onRefused(FetchRefused refused) {
        PendingPull pending = pendingByWire(refused.wireId());
        if (pending != null) {
            timers.cancel(refused.wireId());
            fail(pending, refused.nodeId(), refused.reason());
        }
        return this;
    }

    private Behavior<Command> onAnswerTimeout(AnswerTimedOut timeout) {
        PendingPull pending = pendingByWire(timeout.wireId());
        if (pending != null && pending.transport == null) {
            fail(pending, pending.holder, (pending.fetchSent ? "tensor %d v%d: node %s did not answer the fetch within %s"
                    : "tensor %d v%d: node %s is not reachable (no tensor service of it in the cluster within %s)")
                    .formatted(pending.source.tensorId(), pending.source.version(), pending.holder,
                            settings.answerTimeout()));
        }
        return this;
    }

    private Behavior<Command> onReceived(Received received) {
        PendingPull pending = pendingByWire(received.wireId());
        Arena arena = incoming.remove(received.wireId());
        if (pending == null) {                     // the pull already failed (holder gone): drop the bytes
            if (arena != null) {
                arena.close();
            }
            return this;
        }
        TensorDescriptor source = pending.source;
        if (received.error() != null) {
            if (arena != null) {
                arena.close();
            }
            Throwable cause = received.error() instanceof CompletionException c && c.getCause() != null
                    ? c.getCause() : received.error();
            fail(pending, pending.holder, "tensor %d v%d from %s over %s: %s".formatted(source.tensorId(),
                    source.version(), pending.holder, received.transport(), cause.getMessage()));
            return this;
        }
        MemorySegment data = received.data();
        if (data.byteSize() != source.byteLength() || arena == null) {
            if (arena != null) {
                arena.close();
            }
            fail(pending, pending.holder, "tensor %d v%d from %s: %,d bytes arrived (expected: %,d)"
                    .formatted(source.tensorId(), source.version(), pending.holder, data.byteSize(),
                            source.byteLength()));
            return this;
        }
        TensorDescriptor local = store.putOwned(source, data, arena);
        if (received.transport() == Transport.IPC) {
            pulledIpc++;
            bytesInIpc += data.byteSize();
        } else {
            pulledUdp++;
            bytesInUdp += data.byteSize();
        }
        finish(pending);
        for (ActorRef<PullReply> waiter : pending.waiters) {
            waiter.tell(new Pulled(local, pending.holder, received.transport()));
        }
        return this;
    }

    private PendingPull pendingByWire(long wireId) {
        Key key = pullsByWire.get(wireId);
        return key == null ? null : pulls.get(key);
    }

    private void fail(PendingPull pending, String atFault, String reason) {
        pullsFailed++;
        finish(pending);
        for (ActorRef<PullReply> waiter : pending.waiters) {
            waiter.tell(new PullFailed(pending.source.tensorId(), pending.source.version(), atFault, reason));
        }
    }

    private void finish(PendingPull pending) {
        timers.cancel(pending.wireId);
        pullsByWire.remove(pending.wireId);
        pulls.remove(new Key(pending.source.tensorId(), pending.source.version()));
    }

    private Behavior<Command> onPeers(Receptionist.Listing listing) {
        Map<String, ActorRef<Command>> now = new HashMap<>();
        for (ActorRef<Command> ref : listing.getServiceInstances(KEY)) {   // reachable instances only
            now.put(NodeIds.of(ref, nodeId), ref);
        }
        for (String gone : new ArrayList<>(peers.keySet())) {
            if (!now.containsKey(gone)) {
                onPeerGone(gone);
            }
        }
        peers.clear();
        peers.putAll(now);
        gone.removeAll(now.keySet());      // reachable again
        for (PendingPull pending : pulls.values()) {
            ActorRef<Command> holder = pending.fetchSent ? null : peers.get(pending.holder);
            if (holder != null) {
                fetch(pending, holder);
            }
        }
        return this;
    }

    private void onPeerGone(String peer) {
        getContext().getLog().info("tensor service of {} is gone (unreachable or left)", peer);
        gone.add(peer);
        if (gone.size() > 1024) {
            gone.remove(gone.iterator().next());
        }
        for (PendingPull pending : new ArrayList<>(pulls.values())) {
            if (pending.holder.equals(peer)) {
                fail(pending, peer, "tensor %d v%d: node %s became unreachable or left the cluster during the transfer"
                        .formatted(pending.source.tensorId(), pending.source.version(), peer));
            }
        }
        List<TensorSender> toClose = new ArrayList<>();
        for (Iterator<Map.Entry<String, TensorSender>> it = senders.entrySet().iterator(); it.hasNext(); ) {
            var e = it.next();
            if (e.getKey().startsWith(peer + " ")) {
                toClose.add(e.getValue());
                it.remove();
            }
        }
        String dir = ipcDirs.remove(peer);
        blocking.execute(() -> {
            toClose.forEach(TensorSender::close);
            ExchangeNode client = dir == null ? null : ipcClients.remove(dir);
            if (client != null) {
                client.close();     // before its driver goes away with the peer, if it has not already
            }
        });
    }

    // ---- holder side -------------------------------------------------------------------------------------------

    /** This node's bytes of a tensor version: its store's, else another source's; null if it holds none. */
    private MemorySegment held(long tensorId, long version) {
        var stored = store.get(tensorId, version);
        return stored.isPresent() ? stored.get().data() : others.find(tensorId, version);
    }

    private Behavior<Command> onFetch(Fetch fetch) {
        if (held(fetch.tensorId(), fetch.version()) == null) {
            refuse(fetch, "tensor %d v%d is not stored on %s".formatted(fetch.tensorId(), fetch.version(), nodeId));
            return this;
        }
        Inbox to = fetch.inbox();
        Transport transport;
        if (settings.transport() != Transport.UDP && to.acceptsIpc() && to.hostId().equals(hostId)
                && Files.isDirectory(Path.of(to.aeronDirectory()))) {
            transport = Transport.IPC;
        } else if (settings.transport() != Transport.IPC && to.acceptsUdp()) {
            transport = Transport.UDP;
        } else {
            refuse(fetch, ("no transport from %s (%s, host %s) to %s (IPC %s, UDP %s, host %s): IPC needs one host "
                    + "and a reachable driver directory").formatted(nodeId, settings.transport(), hostId, to.nodeId(),
                    to.acceptsIpc() ? "on" : "off", to.acceptsUdp() ? "on" : "off", to.hostId()));
            return this;
        }
        String key = to.nodeId() + " " + transport + " " + (transport == Transport.IPC
                ? to.aeronDirectory() + " " + to.ipcStreamId() : to.udpHost() + ":" + to.udpPort() + " " + to.udpStreamId());
        TensorSender sender = senders.get(key);
        if (sender != null) {
            send(fetch, key, sender, transport);
            return this;
        }
        List<Fetch> queued = awaitingSender.get(key);
        if (queued != null) {
            queued.add(fetch);
            return this;
        }
        queued = new ArrayList<>();
        queued.add(fetch);
        awaitingSender.put(key, queued);
        if (transport == Transport.IPC) {
            ipcDirs.put(to.nodeId(), to.aeronDirectory());
        }
        CompletableFuture<TensorSender> made = CompletableFuture.supplyAsync(() -> transport == Transport.IPC
                ? ipcClients.computeIfAbsent(to.aeronDirectory(), dir -> ExchangeNode.connect(dir, settings.exchange()))
                        .newSender(ExchangeChannels.ipc(), to.ipcStreamId())
                : exchange.newSender(ExchangeChannels.udp(to.udpHost(), to.udpPort()), to.udpStreamId()), blocking);
        getContext().pipeToSelf(made, (s, error) -> new SenderReady(key, s, error));
        return this;
    }

    private Behavior<Command> onSenderReady(SenderReady ready) {
        List<Fetch> queued = awaitingSender.remove(ready.senderKey());
        if (ready.error() != null) {
            String reason = "cannot open a sender (%s): %s".formatted(ready.senderKey(), ready.error());
            getContext().getLog().warn(reason);
            for (Fetch f : queued) {
                refuse(f, reason);
            }
            return this;
        }
        senders.put(ready.senderKey(), ready.sender());
        Transport transport = ready.senderKey().contains(" IPC ") ? Transport.IPC : Transport.UDP;
        for (Fetch f : queued) {
            send(f, ready.senderKey(), ready.sender(), transport);
        }
        return this;
    }

    private void send(Fetch fetch, String senderKey, TensorSender sender, Transport transport) {
        MemorySegment data = held(fetch.tensorId(), fetch.version());
        if (data == null) {     // released while the sender was being made
            refuse(fetch, "tensor %d v%d is not stored on %s".formatted(fetch.tensorId(), fetch.version(), nodeId));
            return;
        }
        sending.merge(new Key(fetch.tensorId(), fetch.version()), 1, Integer::sum);
        fetch.requester().tell(new FetchAccepted(fetch.wireId(), transport));
        getContext().pipeToSelf(sender.send(fetch.wireId(), fetch.version(), data),
                (ok, error) -> new Sent(fetch, senderKey, transport, data.byteSize(), error));
    }

    private Behavior<Command> onSent(Sent sent) {
        Fetch fetch = sent.fetch();
        Key key = new Key(fetch.tensorId(), fetch.version());
        if (sending.merge(key, -1, Integer::sum) <= 0) {
            sending.remove(key);
            if (releaseAfterSend.remove(key)) {
                store.remove(key.tensorId(), key.version());
            }
        }
        if (sent.error() == null) {
            long bytes = sent.bytes();
            if (sent.transport() == Transport.IPC) {
                sentIpc++;
                bytesOutIpc += bytes;
            } else {
                sentUdp++;
                bytesOutUdp += bytes;
            }
        } else {
            Throwable cause = sent.error() instanceof CompletionException c && c.getCause() != null
                    ? c.getCause() : sent.error();
            String reason = "sending tensor %d v%d to %s failed: %s".formatted(fetch.tensorId(), fetch.version(),
                    fetch.inbox().nodeId(), cause.getMessage());
            getContext().getLog().warn(reason);
            refuse(fetch, reason);
            if (cause instanceof TensorTransferException t && t.reason() != TensorTransferException.Reason.TIMEOUT) {
                TensorSender broken = senders.remove(sent.senderKey());   // a fresh publication next time
                if (broken != null) {
                    blocking.execute(broken::close);
                }
            }
        }
        return this;
    }

    private void refuse(Fetch fetch, String reason) {
        fetch.requester().tell(new FetchRefused(fetch.wireId(), nodeId, reason));
    }

    private Behavior<Command> onChecksum(Checksum request) {
        MemorySegment data = held(request.tensorId(), request.version());
        if (data == null) {
            request.replyTo().tell(new ChecksumReply(request.tensorId(), request.version(), nodeId, false, 0, 0));
            return this;
        }
        Key key = new Key(request.tensorId(), request.version());
        sending.merge(key, 1, Integer::sum);     // a release waits for the sum, as for a send
        getContext().pipeToSelf(CompletableFuture.supplyAsync(() -> crc32c(data), blocking),
                (crc, error) -> new Summed(request, data.byteSize(), error == null ? crc : 0));
        return this;
    }

    private Behavior<Command> onSummed(Summed summed) {
        Checksum request = summed.request();
        Key key = new Key(request.tensorId(), request.version());
        if (sending.merge(key, -1, Integer::sum) <= 0) {
            sending.remove(key);
            if (releaseAfterSend.remove(key)) {
                store.remove(key.tensorId(), key.version());
            }
        }
        request.replyTo().tell(new ChecksumReply(request.tensorId(), request.version(), nodeId, true,
                summed.byteLength(), summed.crc()));
        return this;
    }

    private Behavior<Command> onGetStats(GetStats get) {
        get.replyTo().tell(new TransferStats(nodeId, pulledIpc, pulledUdp, bytesInIpc, bytesInUdp, sentIpc, sentUdp,
                bytesOutIpc, bytesOutUdp, pullsFailed));
        return this;
    }

    private Behavior<Command> onRelease(Release release) {
        Key key = new Key(release.tensorId(), release.version());
        if (sending.containsKey(key)) {
            releaseAfterSend.add(key);
        } else {
            store.remove(key.tensorId(), key.version());
        }
        return this;
    }

    /** CRC32C over a segment of any size, in windows (a ByteBuffer view is limited to 2 GiB). */
    static int crc32c(MemorySegment data) {
        CRC32C crc = new CRC32C();
        long window = 1L << 30;
        for (long at = 0; at < data.byteSize(); at += window) {
            crc.update(data.asSlice(at, Math.min(window, data.byteSize() - at)).asByteBuffer());
        }
        return (int) crc.getValue();
    }

    private Behavior<Command> onStop() {
        for (PendingPull pending : new ArrayList<>(pulls.values())) {
            fail(pending, nodeId, "node %s is shutting down".formatted(nodeId));
        }
        senders.values().forEach(TensorSender::close);
        senders.clear();
        if (ipcInbox != null) {
            ipcInbox.close();
        }
        if (udpInbox != null) {
            udpInbox.close();
        }
        ipcClients.values().forEach(ExchangeNode::close);
        ipcClients.clear();
        blocking.shutdownNow();
        for (Arena arena : incoming.values()) {
            arena.close();
        }
        incoming.clear();
        return this;
    }
}
