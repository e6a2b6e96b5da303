/**
 * Chat templates: a model's {@code tokenizer.chat_template} (Hugging Face Jinja) turned into a prompt string.
 * {@link aether.llm.chat.ChatTemplate} compiles a template once and renders {@link aether.llm.chat.ChatMessage}
 * conversations with the semantics of {@code transformers}' template environment (trim_blocks, lstrip_blocks, loop
 * controls, {@code raise_exception}, {@code strftime_now}, {@code namespace}, Python string and dict methods,
 * {@code tojson} as {@code json.dumps}). The Jinja engine is Jinjava; everything it gets wrong for these templates is
 * patched here and nothing of it leaks: failures surface as {@link aether.llm.chat.ChatTemplateException} naming the
 * template line. Depends on {@code aether.llm.gguf} for metadata only; must not depend on tokenizers or models.
 */
package aether.llm.chat;
