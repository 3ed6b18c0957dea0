// EachLine.java: runs a Kafka tool's main() once per line of standard input in one JVM, for contrib/kafka.sh acl DIR - (a JVM start per ACL costs a second or more).
//
//   java -cp "LIBS/*" EachLine.java CLASS ARGS... <LINES
//
// Each non-empty line not starting with '#' is split on blanks (no quoting:
// principals, topics and operations have none) and appended to ARGS.  A
// tool that fails calls Kafka's Exit.exit, which ends the JVM with its
// status, so the first failing line stops the batch.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

public class EachLine {
	public static void main(String[] argv) throws Throwable {
		Method main = Class.forName(argv[0]).getMethod("main", String[].class);
		List<String> common = Arrays.asList(argv).subList(1, argv.length);
		BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
		for (String line; (line = in.readLine()) != null;) {
			line = line.trim();
			if (line.isEmpty() || line.startsWith("#"))
				continue;
			List<String> args = new ArrayList<>(common);
			args.addAll(Arrays.asList(line.split("\\s+")));
			try {
				main.invoke(null, (Object) args.toArray(new String[0]));
			} catch (InvocationTargetException e) {
				throw e.getCause();
			}
		}
	}
}
