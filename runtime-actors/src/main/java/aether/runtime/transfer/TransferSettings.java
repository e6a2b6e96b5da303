package aether.runtime.transfer;

import aether.runtime.exchange.ExchangeConfig;
import java.time.Duration;
import java.util.Objects;

/**
 * Settings of a node's {@link TensorService}.
 *
 * @param transport       which transports this node sends and receives on
 * @param ipcStreamId     the Aeron stream of its IPC inbox (on its own media driver)
 * @param udpHost         the address its UDP inbox binds to and peers send to; {@code null} only with {@link Transport#IPC}
 * @param udpPort         the UDP inbox's port (1..65535; ignored with {@link Transport#IPC})
 * @param udpStreamId     the Aeron stream of its UDP inbox
 * @param answerTimeout   how long a pull waits for the holding node to accept or refuse it
 * @param transferTimeout how long a pull waits for the bytes once the holder started sending
 * @param exchange        the settings of media-driver clients this node opens to peers on its host (IPC)
 */
public record TransferSettings(Transport transport, int ipcStreamId, String udpHost, int udpPort, int udpStreamId,
        Duration answerTimeout, Duration transferTimeout, ExchangeConfig exchange) {

    public TransferSettings {
        Objects.requireNonNull(transport, "transport");
        Objects.requireNonNull(exchange, "exchange");
        positive("answerTimeout", answerTimeout);
        positive("transferTimeout", transferTimeout);
        if (transport != Transport.IPC) {
            if (udpHost == null || udpHost.isBlank()) {
                throw new IllegalArgumentException("udpHost: '%s' (expected: an address, with transport %s)"
                        .formatted(udpHost, transport));
            }
            if (udpPort < 1 || udpPort > 65535) {
                throw new IllegalArgumentException("udpPort: %d (expected: 1..65535, with transport %s)"
                        .formatted(udpPort, transport));
            }
        }
        if (ipcStreamId == udpStreamId) {
            throw new IllegalArgumentException("ipcStreamId and udpStreamId are both %d (expected: different streams)"
                    .formatted(ipcStreamId));
        }
    }

    private static void positive(String name, Duration d) {
        Objects.requireNonNull(d, name);
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException("%s: %s (expected: positive)".formatted(name, d));
        }
    }
}
