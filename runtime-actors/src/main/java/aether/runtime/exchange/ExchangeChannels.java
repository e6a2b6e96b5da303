package aether.runtime.exchange;

/**
 * Aeron channel URIs tuned for tensor payloads: the largest MTU Aeron allows (so a frame carries ~64 KiB and a 64 MiB
 * tensor is ~1,000 frames), terms large enough that a sender rarely waits on the receiver, and for UDP a receiver
 * window and socket buffers of 2 MiB. The socket buffers are capped by the OS ({@code net.core.rmem_max},
 * {@code wmem_max}); with smaller caps Aeron warns and UDP still works, only slower.
 */
public final class ExchangeChannels {

    /** Aeron's largest MTU: the largest UDP payload, rounded down to its 32-byte frame alignment. */
    public static final int MTU = 65504;
    static final int IPC_TERM_LENGTH = 32 << 20;
    static final int UDP_TERM_LENGTH = 16 << 20;
    static final int UDP_WINDOW = 2 << 20;

    private ExchangeChannels() {}

    /** Shared memory between processes attached to the same media driver. */
    public static String ipc() {
        return "aeron:ipc?term-length=" + IPC_TERM_LENGTH + "|mtu=" + MTU;
    }

    /**
     * UDP unicast to {@code host:port}; the receiver binds there, the sender sends there.
     *
     * @throws IllegalArgumentException if the port is not 1..65535 or the host is blank
     */
    public static String udp(String host, int port) {
        if (host == null || host.isBlank()) {
            throw new IllegalArgumentException("host: '%s' (expected: an address or name)".formatted(host));
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("port: %d (expected: 1..65535)".formatted(port));
        }
        return "aeron:udp?endpoint=" + host + ":" + port + "|term-length=" + UDP_TERM_LENGTH + "|mtu=" + MTU
                + "|rcv-wnd=" + UDP_WINDOW + "|so-rcvbuf=" + UDP_WINDOW + "|so-sndbuf=" + UDP_WINDOW;
    }
}
