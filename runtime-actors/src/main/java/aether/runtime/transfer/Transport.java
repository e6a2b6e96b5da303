package aether.runtime.transfer;

/** How tensor bytes travel between two nodes. */
public enum Transport {
    /** Aeron IPC when the peer shares this host (and its media driver directory is reachable), UDP otherwise. */
    AUTO,
    /** Aeron IPC only: a transfer to a node on another host fails. */
    IPC,
    /** Aeron UDP only, even to a node on this host (tests use it to exercise the network path on loopback). */
    UDP
}
