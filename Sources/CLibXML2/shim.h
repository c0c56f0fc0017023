// libxml2's SAX2 push parser, which OCPPSOAP's XMLReader drives directly (see XMLReader.swift for why not through
// FoundationXML's XMLParser).
#include <libxml/xmlversion.h>
// Debian builds libxml2 with ICU; its ICU headers clash with the ICU module Foundation brings. Nothing here uses
// libxml2's ICU converters (the reader takes UTF-8 only), and the declarations this drops change no structure
// the reader reads.
#undef LIBXML_ICU_ENABLED
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
