package cnosdbtest

import (
	"fmt"
	"net/http"
	"strconv"
)

// apiError is one answer CnosDB gives for a failed request. An empty code
// means the answer has no body (CnosDB's bare 500 and 413).
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string {
	if e.code == "" {
		return strconv.Itoa(e.status)
	}
	return fmt.Sprintf("%d %s %s", e.status, e.code, e.message)
}

// body renders the error the way serde_json writes ErrorResponse.
func (e *apiError) body() []byte {
	if e.code == "" {
		return nil
	}
	b := make([]byte, 0, 48+len(e.message))
	b = append(b, `{"error_code":`...)
	b = appendJSONString(b, e.code)
	b = append(b, `,"error_message":`...)
	b = appendJSONString(b, e.message)
	return append(b, '}')
}

func bare(status int) *apiError { return &apiError{status: status} }

func unprocessable(code, msg string) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, code: code, message: msg}
}

func badRequest(code, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, message: msg}
}

// The texts below are the Display strings of the Rust errors CnosDB returns.

func errMissingAuthorization() *apiError {
	// warp's MissingHeader wrapped in UnknownCodeWithMessage.
	return badRequest("000000", `Missing request header "authorization"`)
}

func errParseAuth(header string) *apiError {
	return badRequest("040006", "Parse auth, malformed basic auth encoding: "+header)
}

// errUserNotFound: 2.4 with password checks says no more than for a wrong
// password; without them, and in 2.3.0, it names the user.
func errUserNotFound(d Dialect, user string, checks bool) *apiError {
	if d != V230 && checks {
		return errAccessDenied(d, user)
	}
	return unprocessable("010016", "Auth error: The user "+user+" not found")
}

func errAccessDenied(d Dialect, user string) *apiError {
	if d == V230 {
		// The trailing space is CnosDB's: an empty detail after "(using password)".
		return unprocessable("010016", "Auth error: Access denied for user '"+user+"' (using password) ")
	}
	return unprocessable("010016", "Auth error: Access denied for user '"+user+"' (using xxx) username or password invalid")
}

func errTenantNotFound(d Dialect, tenant string) *apiError {
	if d == V230 {
		return bare(http.StatusInternalServerError)
	}
	// Authentication looks the tenant up, so 2.4.3 answers as auth does.
	return unprocessable("010016", "Auth error: The tenant "+tenant+" not found")
}

func errInvalidHeader(reason string) *apiError {
	return badRequest("040005", "Invalid header: "+reason)
}

func errDecodeRequest(reason string) *apiError {
	return badRequest("040013", "Error decode request: "+reason)
}

func errInvalidUTF8(reason string) *apiError {
	return unprocessable("040015", "Invalid utf-8 sequence: "+reason)
}

func errParseLines(d Dialect, reason string) *apiError {
	if d == V230 {
		return bare(http.StatusInternalServerError)
	}
	return unprocessable("040004", "Error parsing message: "+reason)
}

func errDatabaseNotFound(d Dialect, db string) *apiError {
	if d != V230 {
		return errQueryDatabaseNotFound(db)
	}
	return unprocessable("050001", "Meta request error: Database not found: "+strconv.Quote(db))
}

func errTimestampOverflow() *apiError {
	return unprocessable("050014", "timestamp overflow")
}

func errExpired(d Dialect) *apiError {
	if d == V230 {
		return unprocessable("050014", "write expired time data not permit")
	}
	// 2.4 refuses to create a bucket older than the TTL.
	return unprocessable("030034", "Operation not support: create expired bucket")
}

func errFieldType230(name string) *apiError {
	return unprocessable("020004", "DataSchemaError: unrecognized field type "+name)
}

func errColumnType24(name, found, expected string) *apiError {
	return unprocessable("050014", fmt.Sprintf("Apply engine failed: DataSchemaError: Column '%s' type error, found %s expected %s", name, found, expected))
}

func errLineToBatch(want column) *apiError {
	kind := "string"
	if want.kind == kindField {
		switch want.typ {
		case typeFloat:
			kind = "f64"
		case typeInt:
			kind = "i64"
		case typeUint:
			kind = "u64"
		case typeBool:
			kind = "bool"
		}
	}
	return unprocessable("050014", "line to batch error: Expected "+kind+" column")
}

func errMemoryExhausted() *apiError {
	return unprocessable("020005", "Memory Exhausted Retry Later")
}

func errDatabaseExists(db string) *apiError {
	return unprocessable("030018", "Database "+strconv.Quote(db)+" already exists")
}

func errQueryDatabaseNotFound(db string) *apiError {
	return unprocessable("030017", "Database not found: "+strconv.Quote(db))
}

func errTableNotFound(d Dialect, tenant, db, table string) *apiError {
	if d == V230 {
		return unprocessable("010001", fmt.Sprintf("Datafusion: Error during planning: failed to resolve tenant:%s  db: %s, table: %s", tenant, db, table))
	}
	return unprocessable("010001", fmt.Sprintf("Datafusion: Error during planning: Table not found, tenant: %s db: %s, table: %s", tenant, db, table))
}

func errSQLParser(msg string) *apiError {
	return unprocessable("010009", "sql parser error: "+msg)
}

func errNotImplemented(msg string) *apiError {
	return unprocessable("010005", "This feature is not implemented: "+msg)
}

func errMultiStatement(n int, sql string) *apiError {
	return unprocessable("010013", fmt.Sprintf("Multi-statement not allow, found num:%d, sql:%s", n, sql))
}
