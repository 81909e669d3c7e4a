"""What the console decides itself, with no I/O: who reaches which screen, the forms and
how a refusal is placed on them, the timeline's and the charts' geometry, its words."""
