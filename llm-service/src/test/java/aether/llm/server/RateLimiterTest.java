package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class RateLimiterTest {

    @Test
    void shouldAllowABurstOfTheLimitThenOnePerIntervalPerKey() {
        var now = new AtomicLong(1_000_000_000L);
        var limiter = new RateLimiter(6, now::get);   // one every 10 s, bursts of 6
        for (int i = 0; i < 6; i++) {
            assertThat(limiter.acquire("a")).isZero();
        }
        assertThat(limiter.acquire("a")).isEqualTo(10);
        assertThat(limiter.acquire("b")).as("other keys have their own bucket").isZero();
        now.addAndGet(4_000_000_000L);
        assertThat(limiter.acquire("a")).isEqualTo(6);
        now.addAndGet(6_000_000_000L);
        assertThat(limiter.acquire("a")).isZero();
        assertThat(limiter.acquire("a")).isEqualTo(10);
        now.addAndGet(3_600_000_000_000L);   // an hour idle refills to the burst, not beyond
        for (int i = 0; i < 6; i++) {
            assertThat(limiter.acquire("a")).isZero();
        }
        assertThat(limiter.acquire("a")).isPositive();
    }

    @Test
    void shouldRefuseANonPositiveRate() {
        assertThatThrownBy(() -> new RateLimiter(0, System::nanoTime)).hasMessageContaining("rate limit 0/min");
    }
}
