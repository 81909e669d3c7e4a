package org.yixian.partner;

/**
 * One reason an event is invalid: the field at fault as a dotted path into the event
 * ({@code data.group.version}), or {@code key}, {@code value}, {@code header ce_type}; and
 * why. The same shape as the reasons of the nodes' own dead letters.
 */
record Problem(String field, String reason) {}
