package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The grid tables (loaded from iq-grids.bin) against text of llama.cpp's sources, typed here independently:
 * entries of ggml-common.h at known positions, and the whole of {@code iq2xxs_grid} / {@code iq2xs_grid} rebuilt
 * from the compact {@code kgrid_2bit_256} / {@code kgrid_2bit_512} tables of ggml-quants.c
 * ({@code iq2xs_init_impl}: 2 bits per element, element {@code i} in bits {@code 2i..2i+1}, levels
 * 0x08, 0x19, 0x2b, 0x3e), plus the structural facts every table must satisfy.
 */
class IqGridsTest {

    /** ggml-quants.c {@code kgrid_2bit_256}. */
    private static final int[] KGRID_2BIT_256 = {
        0, 2, 5, 8, 10, 17, 20, 32, 34, 40, 42, 65, 68, 80, 88, 97,
        100, 128, 130, 138, 162, 257, 260, 272, 277, 320, 388, 408, 512, 514, 546, 642,
        1025, 1028, 1040, 1057, 1060, 1088, 1090, 1096, 1120, 1153, 1156, 1168, 1188, 1280, 1282, 1288,
        1312, 1350, 1385, 1408, 1425, 1545, 1552, 1600, 1668, 1700, 2048, 2053, 2056, 2068, 2088, 2113,
        2116, 2128, 2130, 2184, 2308, 2368, 2562, 2580, 4097, 4100, 4112, 4129, 4160, 4192, 4228, 4240,
        4245, 4352, 4360, 4384, 4432, 4442, 4480, 4644, 4677, 5120, 5128, 5152, 5157, 5193, 5248, 5400,
        5474, 5632, 5654, 6145, 6148, 6160, 6208, 6273, 6400, 6405, 6560, 6737, 8192, 8194, 8202, 8260,
        8289, 8320, 8322, 8489, 8520, 8704, 8706, 9217, 9220, 9232, 9280, 9302, 9472, 9537, 9572, 9872,
        10248, 10272, 10388, 10820, 16385, 16388, 16400, 16408, 16417, 16420, 16448, 16456, 16470, 16480, 16513, 16516,
        16528, 16640, 16672, 16737, 16768, 16773, 16897, 16912, 16968, 16982, 17000, 17408, 17416, 17440, 17536, 17561,
        17682, 17700, 17920, 18433, 18436, 18448, 18496, 18501, 18688, 18776, 18785, 18818, 19013, 19088, 20480, 20488,
        20497, 20505, 20512, 20608, 20616, 20740, 20802, 20900, 21137, 21648, 21650, 21770, 22017, 22100, 22528, 22545,
        22553, 22628, 22848, 23048, 24580, 24592, 24640, 24680, 24832, 24917, 25112, 25184, 25600, 25605, 25872, 25874,
        25988, 26690, 32768, 32770, 32778, 32833, 32898, 33028, 33048, 33088, 33297, 33793, 33796, 33808, 33813, 33856,
        33888, 34048, 34118, 34196, 34313, 34368, 34400, 34818, 35076, 35345, 36868, 36880, 36900, 36928, 37025, 37142,
        37248, 37445, 37888, 37922, 37956, 38225, 39041, 39200, 40962, 41040, 41093, 41225, 41472, 42008, 43088, 43268,
    };

    /** ggml-quants.c {@code kgrid_2bit_512}. */
    private static final int[] KGRID_2BIT_512 = {
        0, 2, 5, 8, 10, 17, 20, 22, 25, 32, 34, 37, 40, 65, 68, 70,
        73, 80, 82, 85, 88, 97, 100, 128, 130, 133, 136, 145, 148, 153, 160, 257,
        260, 262, 265, 272, 274, 277, 280, 282, 289, 292, 320, 322, 325, 328, 337, 340,
        352, 360, 385, 388, 400, 512, 514, 517, 520, 529, 532, 544, 577, 580, 592, 597,
        640, 650, 1025, 1028, 1030, 1033, 1040, 1042, 1045, 1048, 1057, 1060, 1088, 1090, 1093, 1096,
        1105, 1108, 1110, 1120, 1153, 1156, 1168, 1280, 1282, 1285, 1288, 1297, 1300, 1312, 1345, 1348,
        1360, 1377, 1408, 1537, 1540, 1552, 1574, 1600, 1602, 1668, 2048, 2050, 2053, 2056, 2058, 2065,
        2068, 2080, 2085, 2113, 2116, 2128, 2136, 2176, 2208, 2218, 2305, 2308, 2320, 2368, 2433, 2441,
        2560, 2592, 2600, 2710, 2720, 4097, 4100, 4102, 4105, 4112, 4114, 4117, 4120, 4129, 4132, 4160,
        4162, 4165, 4168, 4177, 4180, 4192, 4202, 4225, 4228, 4240, 4352, 4354, 4357, 4360, 4369, 4372,
        4384, 4417, 4420, 4432, 4480, 4500, 4502, 4609, 4612, 4614, 4624, 4672, 4704, 5120, 5122, 5125,
        5128, 5137, 5140, 5152, 5185, 5188, 5193, 5200, 5220, 5248, 5377, 5380, 5392, 5440, 5632, 5652,
        5705, 6145, 6148, 6160, 6162, 6208, 6228, 6278, 6400, 6405, 6502, 6737, 6825, 8192, 8194, 8197,
        8200, 8202, 8209, 8212, 8224, 8257, 8260, 8272, 8320, 8352, 8449, 8452, 8464, 8512, 8520, 8549,
        8704, 8738, 8832, 8872, 9217, 9220, 9232, 9257, 9280, 9472, 9537, 9554, 9625, 9729, 9754, 9894,
        10240, 10248, 10250, 10272, 10325, 10376, 10402, 10600, 10640, 10760, 10784, 10882, 10888, 10890, 16385, 16388,
        16390, 16393, 16400, 16402, 16405, 16408, 16417, 16420, 16448, 16450, 16453, 16456, 16458, 16465, 16468, 16480,
        16485, 16513, 16516, 16528, 16640, 16642, 16645, 16648, 16657, 16660, 16672, 16705, 16708, 16720, 16768, 16773,
        16802, 16897, 16900, 16912, 16914, 16937, 16960, 17408, 17410, 17413, 17416, 17425, 17428, 17433, 17440, 17473,
        17476, 17488, 17536, 17556, 17665, 17668, 17680, 17700, 17728, 17818, 17920, 17930, 17988, 18000, 18433, 18436,
        18448, 18496, 18501, 18516, 18530, 18688, 18705, 18756, 18768, 18793, 18948, 20480, 20482, 20485, 20488, 20497,
        20500, 20512, 20520, 20545, 20548, 20560, 20608, 20737, 20740, 20752, 20757, 20800, 20802, 20992, 21060, 21162,
        21505, 21508, 21520, 21537, 21568, 21600, 21633, 21665, 21760, 21768, 21888, 21896, 22049, 22120, 22177, 22528,
        22548, 22593, 22608, 22681, 22810, 22848, 22850, 23173, 24577, 24580, 24592, 24640, 24660, 24674, 24710, 24745,
        24832, 25124, 25162, 25234, 25600, 25622, 25872, 25920, 25925, 26020, 26625, 26730, 26917, 27142, 27220, 27234,
        32768, 32770, 32773, 32776, 32785, 32788, 32800, 32810, 32833, 32836, 32848, 32896, 32898, 32936, 32938, 33025,
        33028, 33030, 33040, 33088, 33105, 33113, 33280, 33312, 33408, 33410, 33440, 33448, 33793, 33796, 33808, 33810,
        33813, 33856, 33888, 33929, 34048, 34116, 34213, 34328, 34410, 34816, 34824, 34853, 34906, 34944, 34946, 34984,
        35078, 35362, 35456, 35464, 35478, 35496, 36865, 36868, 36880, 36928, 36950, 36996, 37120, 37154, 37220, 37462,
        37513, 37888, 37893, 37956, 37968, 37976, 38185, 38288, 38290, 38465, 38993, 39078, 39241, 39445, 39520, 40960,
        40962, 40968, 40970, 40992, 41002, 41120, 41297, 41305, 41382, 41472, 41474, 41480, 41514, 41600, 41632, 42048,
        42133, 42597, 42648, 43018, 43040, 43042, 43048, 43168, 43176, 43268, 43396, 43398, 43560, 43562, 43665, 43690,
    };

    private static final int[] IQ2_LEVELS = {0x08, 0x19, 0x2b, 0x3e};

    @Test
    void shouldHaveTheSizesOfGgmlCommonTables() {
        assertThat(IqGrids.IQ2XXS).hasSize(256 * 8);
        assertThat(IqGrids.IQ2XS).hasSize(512 * 8);
        assertThat(IqGrids.IQ2S).hasSize(1024 * 8);
        assertThat(IqGrids.IQ1S).hasSize(2048 * 8);
        assertThat(IqGrids.IQ3XXS).hasSize(256 * 4);
        assertThat(IqGrids.IQ3S).hasSize(512 * 4);
        assertThat(IqGrids.KSIGNS_IQ2XS).hasSize(128);
        assertThat(KGRID_2BIT_256).hasSize(256);
        assertThat(KGRID_2BIT_512).hasSize(512);
    }

    @Test
    void shouldRebuildIq2xxsAndIq2xsFromTheCompactKgridTables() {
        assertRebuilt(IqGrids.IQ2XXS, KGRID_2BIT_256);
        assertRebuilt(IqGrids.IQ2XS, KGRID_2BIT_512);
    }

    private static void assertRebuilt(byte[] grid, int[] kgrid) {
        for (int k = 0; k < kgrid.length; k++) {
            for (int i = 0; i < 8; i++) {
                int expected = IQ2_LEVELS[(kgrid[k] >> 2 * i) & 3];
                assertThat(grid[8 * k + i] & 0xFF).as("entry %d element %d", k, i).isEqualTo(expected);
            }
        }
    }

    @Test
    void shouldHoldTheEntriesPrintedInGgmlCommon() {
        assertThat(entry64(IqGrids.IQ2XXS, 0)).isEqualTo(0x0808080808080808L);
        assertThat(entry64(IqGrids.IQ2XXS, 1)).isEqualTo(0x080808080808082bL);
        assertThat(entry64(IqGrids.IQ2XXS, 128)).isEqualTo(0x082b2b0808082b08L);
        assertThat(entry64(IqGrids.IQ2XXS, 255)).isEqualTo(0x2b2b2b1908081908L);
        assertThat(entry64(IqGrids.IQ2XS, 7)).isEqualTo(0x080808080819192bL);
        assertThat(entry64(IqGrids.IQ2S, 0)).isEqualTo(0x0808080808080808L);
        assertThat(entry64(IqGrids.IQ2S, 1020)).isEqualTo(0x2b2b2b2b082b082bL);
        assertThat(entry64(IqGrids.IQ2S, 1022)).isEqualTo(0x2b2b2b2b2b082b08L);
        assertThat(entry64(IqGrids.IQ2S, 1023)).isEqualTo(0x2b2b2b2b2b2b2b2bL);
        assertThat(entry64(IqGrids.IQ1S, 0)).isEqualTo(0xffffffffffffffffL);
        assertThat(entry64(IqGrids.IQ1S, 1)).isEqualTo(0xffffffffffffff01L);
        assertThat(entry64(IqGrids.IQ1S, 2)).isEqualTo(0xffffffffffff0000L);
        assertThat(entry64(IqGrids.IQ1S, 3)).isEqualTo(0xffffffffffff01ffL);
        assertThat(entry64(IqGrids.IQ1S, 2047)).isEqualTo(0x0101010101010101L);
        assertThat(entry32(IqGrids.IQ3XXS, 0)).isEqualTo(0x04040404);
        assertThat(entry32(IqGrids.IQ3XXS, 5)).isEqualTo(0x04040c3e);
        assertThat(entry32(IqGrids.IQ3XXS, 248)).isEqualTo(0x3e1c1c1c);
        assertThat(entry32(IqGrids.IQ3XXS, 255)).isEqualTo(0x3e341c04);
        assertThat(entry32(IqGrids.IQ3S, 0)).isEqualTo(0x01010101);
        assertThat(entry32(IqGrids.IQ3S, 4)).isEqualTo(0x0101010f);
        assertThat(entry32(IqGrids.IQ3S, 504)).isEqualTo(0x0f090307);
        assertThat(entry32(IqGrids.IQ3S, 511)).isEqualTo(0x0f0f0101);
    }

    @Test
    void shouldUseOnlyEachGridsLevelsWithDistinctAscendingEntries() {
        assertLevels(IqGrids.IQ2XXS, 8, Set.of(0x08, 0x19, 0x2b));
        assertLevels(IqGrids.IQ2XS, 8, Set.of(0x08, 0x19, 0x2b));
        assertLevels(IqGrids.IQ2S, 8, Set.of(0x08, 0x19, 0x2b, 0x3e));
        assertLevels(IqGrids.IQ1S, 8, Set.of(0xff, 0x00, 0x01));
        assertLevels(IqGrids.IQ3XXS, 4, Set.of(0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3e));
        assertLevels(IqGrids.IQ3S, 4, Set.of(1, 3, 5, 7, 9, 11, 13, 15));
    }

    /** Every element is one of the levels, and entries ascend by (level rank of element w-1, ..., element 0). */
    private static void assertLevels(byte[] grid, int width, Set<Integer> levels) {
        // rank of each level in value order (iq1s levels are signed: 0xff is -1)
        List<Integer> sorted = levels.stream().sorted(Comparator.comparingInt(v -> (byte) v.intValue())).toList();
        Set<Long> seen = new HashSet<>();
        long previous = -1;
        for (int e = 0; e < grid.length / width; e++) {
            long key = 0;
            for (int j = width - 1; j >= 0; j--) {
                int b = grid[width * e + j] & 0xFF;
                assertThat(levels).as("entry %d element %d", e, j).contains(b);
                key = key * 8 + sorted.indexOf(b);
            }
            assertThat(key).as("entry %d ascends", e).isGreaterThan(previous);
            previous = key;
            assertThat(seen.add(key)).isTrue();
        }
    }

    @Test
    void shouldMakeKsignsEvenParityOverEightBits() {
        for (int i = 0; i < 128; i++) {
            int expected = i | (Integer.bitCount(i) & 1) << 7;
            assertThat(IqGrids.KSIGNS_IQ2XS[i] & 0xFF).as("ksigns_iq2xs[%d]", i).isEqualTo(expected);
        }
    }

    private static long entry64(byte[] grid, int i) {
        long v = 0;
        for (int j = 7; j >= 0; j--) {
            v = v << 8 | (grid[8 * i + j] & 0xFF);
        }
        return v;
    }

    private static int entry32(byte[] grid, int i) {
        int v = 0;
        for (int j = 3; j >= 0; j--) {
            v = v << 8 | (grid[4 * i + j] & 0xFF);
        }
        return v;
    }
}
