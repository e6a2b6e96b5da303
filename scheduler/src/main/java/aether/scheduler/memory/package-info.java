/**
 * Static memory planning for compiled graphs. {@link aether.scheduler.memory.Liveness} finds, for every value a fused
 * plan writes to memory, the step that produces it and the last step that reads it (outputs live to the end; a reshape
 * shares its operand's storage and extends its lifetime); {@link aether.scheduler.memory.ArenaPlanner} packs those
 * lifetime intervals into one arena by first-fit decreasing size with 64-byte aligned offsets, giving an {@link
 * aether.scheduler.memory.ArenaPlan}. Inputs, constants and leaves live outside the arena. Plans only: no allocation of
 * tensor memory happens here. Depends on the IR and {@code aether.scheduler.fusion}.
 */
package aether.scheduler.memory;
