package org.yixian.partner;

/** A bad argument or setting: the message names it; the command exits with status 2. */
final class UsageError extends Exception {
    private static final long serialVersionUID = 1L;

    UsageError(String message) {
        super(message);
    }
}
