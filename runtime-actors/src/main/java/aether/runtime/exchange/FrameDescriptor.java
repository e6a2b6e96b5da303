package aether.runtime.exchange;

import java.nio.ByteOrder;

/**
 * Layout of an exchange frame: one Aeron message (never fragmented by Aeron) holding this header and then
 * {@code chunkLength} payload bytes, the slice {@code [offset, offset + chunkLength)} of a tensor's payload. All fields
 * little-endian.
 *
 * <pre>
 *   0  int   magic             'AETX' (0x58544541)
 *   4  int   chunkLength       payload bytes in this frame
 *   8  long  tensorId
 *  16  long  version
 *  24  long  totalLength       payload bytes of the whole tensor
 *  32  long  offset            where this chunk goes in the payload
 *  40  int   crc32c            CRC32C over the chunk's payload bytes, then header bytes [0, 40)
 *  44  int   reserved          0
 *  48        payload
 * </pre>
 *
 * The CRC covers the header too, so a corrupt offset or length is caught before any byte is copied. Frames of one
 * transfer are sent in order from offset 0; frames of different transfers may interleave on a stream.
 */
final class FrameDescriptor {

    static final ByteOrder ORDER = ByteOrder.LITTLE_ENDIAN;
    static final int MAGIC = 0x58544541;

    static final int MAGIC_OFFSET = 0;
    static final int CHUNK_LENGTH_OFFSET = 4;
    static final int TENSOR_ID_OFFSET = 8;
    static final int VERSION_OFFSET = 16;
    static final int TOTAL_LENGTH_OFFSET = 24;
    static final int PAYLOAD_OFFSET_OFFSET = 32;
    static final int CRC_OFFSET = 40;
    static final int RESERVED_OFFSET = 44;
    static final int HEADER_LENGTH = 48;

    private FrameDescriptor() {}
}
