package aether.cluster.node;

import aether.runtime.exchange.ExchangeNode;
import aether.runtime.transfer.NodeIds;
import aether.runtime.transfer.TensorService;
import aether.runtime.transfer.TensorStore;
import aether.runtime.transfer.TransferSettings;
import java.util.concurrent.CompletableFuture;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.SelfUp;
import org.apache.pekko.cluster.typed.Subscribe;

/**
 * The node's root actor: spawns the node's services (tensor service, device workers) and reports, through futures
 * that {@link AetherNode} waits on, when they exist and when this member is Up in the cluster.
 */
final class NodeGuardian extends AbstractBehavior<NodeGuardian.Command> {

    sealed interface Command {}

    private record BecameUp(SelfUp event) implements Command, NoSerializationVerificationNeeded {}

    /** What the guardian started, handed back to {@link AetherNode}. */
    record Started(String nodeId, TensorStore store, ActorRef<TensorService.Command> tensorService) {}

    private final CompletableFuture<Void> up;

    static Behavior<Command> create(NodeSettings settings, ExchangeNode exchange, TransferSettings transfer,
            CompletableFuture<Started> started, CompletableFuture<Void> up) {
        return Behaviors.setup(ctx -> {
            try {
                String nodeId = NodeIds.of(ctx.getSystem());
                TensorStore store = new TensorStore(nodeId);
                ActorRef<TensorService.Command> service =
                        ctx.spawn(TensorService.create(store, exchange, transfer), "tensor-service");
                started.complete(new Started(nodeId, store, service));
                return new NodeGuardian(ctx, up);
            } catch (RuntimeException | Error e) {
                started.completeExceptionally(e);
                throw e;
            }
        });
    }

    private NodeGuardian(ActorContext<Command> context, CompletableFuture<Void> up) {
        super(context);
        this.up = up;
        Cluster.get(context.getSystem()).subscriptions().tell(
                Subscribe.create(context.messageAdapter(SelfUp.class, BecameUp::new), SelfUp.class));
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder().onMessage(BecameUp.class, m -> {
            up.complete(null);
            return this;
        }).build();
    }
}
