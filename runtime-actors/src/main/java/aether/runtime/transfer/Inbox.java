package aether.runtime.transfer;

import aether.runtime.protocol.CborSerializable;
import java.util.Objects;

/**
 * Where a node receives tensor bytes: its media driver directory and IPC stream (for peers on the same host), and its
 * UDP endpoint and stream (for everybody else). A side the node does not accept is {@code null} (IPC) or port 0 (UDP).
 *
 * @param nodeId          the receiving node (its actor system address)
 * @param hostId          the machine and boot it runs on: IPC is possible only between equal host ids
 * @param aeronDirectory  the receiving node's media driver directory, or {@code null} when it accepts no IPC
 * @param ipcStreamId     the IPC stream its receiver subscribes to
 * @param udpHost         the address its UDP receiver binds to, or {@code null} when it accepts no UDP
 * @param udpPort         the UDP port, 0 when it accepts no UDP
 * @param udpStreamId     the UDP stream its receiver subscribes to
 */
public record Inbox(String nodeId, String hostId, String aeronDirectory, int ipcStreamId, String udpHost, int udpPort,
        int udpStreamId) implements CborSerializable {

    public Inbox {
        Objects.requireNonNull(nodeId, "nodeId");
        Objects.requireNonNull(hostId, "hostId");
        if (aeronDirectory == null && udpHost == null) {
            throw new IllegalArgumentException("inbox of %s accepts neither IPC nor UDP".formatted(nodeId));
        }
        if (udpHost != null && (udpPort < 1 || udpPort > 65535)) {
            throw new IllegalArgumentException("inbox of %s: udpPort %d (expected: 1..65535)".formatted(nodeId, udpPort));
        }
    }

    boolean acceptsIpc() {
        return aeronDirectory != null;
    }

    boolean acceptsUdp() {
        return udpHost != null;
    }
}
