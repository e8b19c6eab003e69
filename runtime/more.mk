# runtime/more.mk -- runtime sources
