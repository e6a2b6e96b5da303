package aether.llm.chat;

import static org.assertj.core.api.Assertions.assertThat;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/** The source rewrite never moves a line break (error lines stay exact) and only touches what it must. */
class TemplateRewriterProperties {

    @Property(tries = 1000)
    void shouldKeepEveryLineBreak(@ForAll("templates") String template) {
        String out = TemplateRewriter.rewrite(template);

        assertThat(out.chars().filter(c -> c == '\n').count()).isEqualTo(template.chars().filter(c -> c == '\n').count());
    }

    @Provide
    Arbitrary<String> templates() {
        Arbitrary<String> piece = Arbitraries.of("{% if not x is defined %}", "{%- endif %}", "{{ not a in b }}",
                "{#- note\n #}", "\n", "  ", "text", "{% for m in xs if not m.y %}", "{{- 'not' -}}", "{%+ if a %}",
                "{% if a +%}", "{{ x is not none }}", "\n    ", "{% set s = \"%}\" %}", "{{ '}}' }}", "{%", "}}");
        return piece.list().ofMaxSize(12).map(l -> String.join("", l));
    }

    @Example
    void shouldParenthesiseOnlyUnaryNot() {
        assertThat(TemplateRewriter.expression(" if not x is defined and not y ")).isEqualTo(" if not (x is defined) and not (y) ");
        assertThat(TemplateRewriter.expression(" x is not none ")).isEqualTo(" x is not none ");
        assertThat(TemplateRewriter.expression(" 'a' not in b ")).isEqualTo(" 'a' not in b ");
        assertThat(TemplateRewriter.expression(" 'not x' ~ notable ")).isEqualTo(" 'not x' ~ notable ");
        assertThat(TemplateRewriter.expression("- if not (a or b) -")).isEqualTo("- if not ((a or b)) -");
        assertThat(TemplateRewriter.expression(" set z = [not a, 1] ")).isEqualTo(" set z = [not (a), 1] ");
    }

    @Example
    void shouldTrimTheNewlineAfterBlocksIntoAnEmptyComment() {
        assertThat(TemplateRewriter.rewrite("{% if a %}\n  {% endif %}\n{{ x }}\ny"))
                .isEqualTo("{% if a %}{#\n#}{% endif %}{#\n#}{{ x }}\ny");
        assertThat(TemplateRewriter.rewrite("{%- if a -%}\n")).isEqualTo("{%- if a -%}\n");
    }
}
