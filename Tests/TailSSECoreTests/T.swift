import Testing; import OpenAPIRuntime; @Test func t() {}
