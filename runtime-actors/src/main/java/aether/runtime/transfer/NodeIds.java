package aether.runtime.transfer;

import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;

/**
 * Node ids: the actor system's own address ({@code pekko://aether@10.0.0.5:25520} in a cluster, {@code pekko://name}
 * without remoting), which is also the address in every actor ref that comes from that node.
 */
public final class NodeIds {

    private NodeIds() {}

    /** This system's node id. */
    public static String of(ActorSystem<?> system) {
        return ((ExtendedActorSystem) Adapter.toClassic(system)).provider().getDefaultAddress().toString();
    }

    /** The node id of the node {@code ref} lives on ({@code self} for a ref of this system). */
    public static String of(ActorRef<?> ref, String self) {
        var address = ref.path().address();
        return address.hasLocalScope() ? self : address.toString();
    }
}
