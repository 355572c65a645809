"""The load stage: staged m3ter objects reconciled into m3ter, journaled."""
