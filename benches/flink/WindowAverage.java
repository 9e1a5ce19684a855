// The tumbling event-time window job of ../../examples/window_average.rs (contract:
// ARCHITECTURE.md section 9), written in Apache Flink's DataStream API, so that wallaroo's
// throughput and results can be checked against Flink's on the same input. See README.md for the
// argument that the two have exactly the same semantics.
//
//   java -cp CLASSPATH WindowAverage --in INPUT --out OUTPUT|- [--parallelism N]
//        [--watermarks record|boundary]
//
// Runs a local MiniCluster (StreamExecutionEnvironment in this main method), streaming mode.
// Prints `late=N proc_ms=P job_ms=J execute_ms=E jvm_to_submit_ms=S` to stderr at the end: the
// records dropped as late; P, from the first record parsed to the last window line written; J,
// the job's net run time as Flink reports it (from submission to the end of the last task, so
// with the tasks' deployment); E, the call of execute() (with the MiniCluster's start and stop);
// S, from the JVM's start to that call.

import java.io.BufferedWriter;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.fs.Path;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

public class WindowAverage {
    static final long WINDOW_MS = 10_000;
    static final long BOUND_MS = 2_000;

    /** One input line: sensor, event time (ms), value. */
    static final class Parse implements MapFunction<String, Tuple3<String, Long, Double>> {
        private boolean started;

        @Override
        public Tuple3<String, Long, Double> map(String line) {
            if (!started) {
                started = true;
                FIRST_RECORD_NS.compareAndSet(0, System.nanoTime());
            }
            int a = line.indexOf(',');
            int b = line.indexOf(',', a + 1);
            if (a < 0 || b < 0) {
                throw new IllegalArgumentException("not SENSOR,EVENT_TIME_MS,VALUE: " + line);
            }
            return Tuple3.of(
                    line.substring(0, a),
                    Long.parseLong(line, a + 1, b, 10),
                    Double.parseDouble(line.substring(b + 1).trim()));
        }
    }

    /**
     * Flink's bounded-out-of-orderness watermark (largest event time seen minus the bound minus
     * 1, as BoundedOutOfOrdernessWatermarks computes it), but emitted on every event instead of
     * on Flink's periodic timer, so that which records are late does not depend on thread
     * timing. Flink's emitter forwards a watermark only when it advances.
     *
     * With `boundary`, only the largest value of the form k*WINDOW_MS - 1 at or below that
     * watermark is emitted. The window operator compares watermarks only with window ends minus
     * 1 (firing: wm >= end-1; lateness: end-1 <= wm), all of that form, so the results are the
     * same with far fewer watermarks on the wire: an optimisation that only a job with aligned
     * tumbling windows can make, measured beside the plain one.
     */
    static final class PerRecordWatermarks implements WatermarkGenerator<Tuple3<String, Long, Double>> {
        private final boolean boundary;
        private long maxTimestamp = Long.MIN_VALUE + BOUND_MS + 1;

        PerRecordWatermarks(boolean boundary) {
            this.boundary = boundary;
        }

        @Override
        public void onEvent(Tuple3<String, Long, Double> event, long timestamp, WatermarkOutput output) {
            if (timestamp > maxTimestamp) {
                maxTimestamp = timestamp;
                long wm = maxTimestamp - BOUND_MS - 1;
                if (boundary) {
                    wm = Math.floorDiv(wm + 1, WINDOW_MS) * WINDOW_MS - 1;
                }
                output.emitWatermark(new Watermark(wm));
            }
        }

        @Override
        public void onPeriodicEmit(WatermarkOutput output) {
            // Nothing: every watermark is emitted by onEvent.
        }
    }

    /** Count, sum and max of a window; the mean is sum / count. */
    public static final class Acc {
        public long count;
        public double sum;
        public double max = Double.NEGATIVE_INFINITY;
    }

    static final class Agg implements AggregateFunction<Tuple3<String, Long, Double>, Acc, Acc> {
        @Override
        public Acc createAccumulator() {
            return new Acc();
        }

        @Override
        public Acc add(Tuple3<String, Long, Double> r, Acc acc) {
            double v = r.f2;
            acc.count += 1;
            acc.sum += v;
            if (v > acc.max) {
                acc.max = v;
            }
            return acc;
        }

        @Override
        public Acc getResult(Acc acc) {
            return acc;
        }

        @Override
        public Acc merge(Acc a, Acc b) {
            a.count += b.count;
            a.sum += b.sum;
            a.max = Math.max(a.max, b.max);
            return a;
        }
    }

    /**
     * A double with 3 decimals exactly as Rust's `{:.3}` writes it: the exact binary value
     * rounded half to even (Java's %.3f rounds the shortest decimal half up, which differs, e.g.
     * for 1.0005 or 0.0625), and a minus sign for any negative value, -0.0 included.
     */
    static String fmt3(double x) {
        boolean negative = Double.doubleToRawLongBits(x) < 0;
        String digits = new BigDecimal(Math.abs(x)).setScale(3, RoundingMode.HALF_EVEN).toPlainString();
        return negative ? "-" + digits : digits;
    }

    static final class Emit extends ProcessWindowFunction<Acc, String, String, TimeWindow> {
        @Override
        public void process(String sensor, Context ctx, Iterable<Acc> accs, Collector<String> out) {
            Acc acc = accs.iterator().next();
            TimeWindow w = ctx.window();
            out.collect(sensor + " [" + w.getStart() + "," + w.getEnd() + ") count=" + acc.count
                    + " mean=" + fmt3(acc.sum / (double) acc.count) + " max=" + fmt3(acc.max));
        }
    }

    /** Writes lines to a file, or to stdout for "-"; run it with parallelism 1. */
    static final class LineSink implements Sink<String> {
        private final String path;

        LineSink(String path) {
            this.path = path;
        }

        @Override
        public SinkWriter<String> createWriter(WriterInitContext context) throws IOException {
            Writer w = path.equals("-")
                    ? new OutputStreamWriter(System.out, StandardCharsets.UTF_8)
                    : new OutputStreamWriter(new FileOutputStream(path), StandardCharsets.UTF_8);
            BufferedWriter out = new BufferedWriter(w, 1 << 16);
            return new SinkWriter<String>() {
                @Override
                public void write(String line, Context ctx) throws IOException {
                    out.write(line);
                    out.write('\n');
                }

                @Override
                public void flush(boolean endOfInput) throws IOException {
                    out.flush();
                }

                @Override
                public void close() throws IOException {
                    if (path.equals("-")) {
                        out.flush();
                    } else {
                        out.close();
                    }
                    LINES_DONE_NS.set(System.nanoTime());
                }
            };
        }
    }

    /**
     * When the first record was parsed and when the last window line was written: the time the
     * job spent on the data, without starting the MiniCluster and deploying the tasks. Static
     * fields work because the MiniCluster runs its tasks in this JVM.
     */
    static final AtomicLong FIRST_RECORD_NS = new AtomicLong();
    static final AtomicLong LINES_DONE_NS = new AtomicLong();

    /** Counts the late records (the window operator's side output) into LATE. */
    static final AtomicLong LATE = new AtomicLong();

    static final class CountSink implements Sink<Tuple3<String, Long, Double>> {
        @Override
        public SinkWriter<Tuple3<String, Long, Double>> createWriter(WriterInitContext context) {
            return new SinkWriter<Tuple3<String, Long, Double>>() {
                long n;

                @Override
                public void write(Tuple3<String, Long, Double> r, Context ctx) {
                    n++;
                }

                @Override
                public void flush(boolean endOfInput) {}

                @Override
                public void close() {
                    LATE.addAndGet(n);
                }
            };
        }
    }

    public static void main(String[] args) throws Exception {
        long jvmStart = java.lang.management.ManagementFactory.getRuntimeMXBean().getStartTime();
        String in = null;
        String out = null;
        int parallelism = 1;
        boolean boundary = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--in": in = args[++i]; break;
                case "--out": out = args[++i]; break;
                case "--parallelism": parallelism = Integer.parseInt(args[++i]); break;
                case "--watermarks":
                    String m = args[++i];
                    if (!m.equals("record") && !m.equals("boundary")) {
                        throw new IllegalArgumentException("--watermarks record|boundary");
                    }
                    boundary = m.equals("boundary");
                    break;
                default: throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (in == null || out == null) {
            System.err.println("usage: WindowAverage --in INPUT --out OUTPUT|- [--parallelism N] [--watermarks record|boundary]");
            System.exit(2);
        }
        if (in.startsWith("file:")) in = in.substring(5);
        if (out.startsWith("file:")) out = out.substring(5);

        Configuration conf = new Configuration();
        // No periodic watermarks: every watermark comes from onEvent (see PerRecordWatermarks).
        conf.set(PipelineOptions.AUTO_WATERMARK_INTERVAL, Duration.ZERO);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setRuntimeMode(RuntimeExecutionMode.STREAMING);
        env.setParallelism(parallelism);
        // Every function here makes new objects, so chained operators may pass them on as is.
        env.getConfig().enableObjectReuse();

        final boolean bnd = boundary;
        // The source, the parse and the watermarks run as one task: one reader, so the watermark
        // follows the file's order; the window operator is keyed and may run in parallel, each
        // of its subtasks getting the records and watermarks of that one task in order.
        FileSource<String> source =
                FileSource.forRecordStreamFormat(new TextLineInputFormat(), new Path(in)).build();
        DataStream<Tuple3<String, Long, Double>> readings = env
                .fromSource(source, WatermarkStrategy.noWatermarks(), "file")
                .setParallelism(1)
                .map(new Parse())
                .setParallelism(1)
                .assignTimestampsAndWatermarks(
                        WatermarkStrategy.<Tuple3<String, Long, Double>>forGenerator(ctx -> new PerRecordWatermarks(bnd))
                                .withTimestampAssigner((r, previous) -> r.f1))
                .setParallelism(1);

        OutputTag<Tuple3<String, Long, Double>> lateTag =
                new OutputTag<Tuple3<String, Long, Double>>("late") {};
        SingleOutputStreamOperator<String> windows = readings
                .keyBy(new KeySelector<Tuple3<String, Long, Double>, String>() {
                    @Override
                    public String getKey(Tuple3<String, Long, Double> r) {
                        return r.f0;
                    }
                })
                .window(TumblingEventTimeWindows.of(Duration.ofMillis(WINDOW_MS)))
                .sideOutputLateData(lateTag)
                .aggregate(new Agg(), new Emit());
        windows.sinkTo(new LineSink(out)).setParallelism(1).name("lines");
        windows.getSideOutput(lateTag).sinkTo(new CountSink()).setParallelism(1).name("late");

        long submit = System.currentTimeMillis();
        JobExecutionResult result = env.execute("window_average");
        long done = System.currentTimeMillis();
        System.err.printf("late=%d proc_ms=%d job_ms=%d execute_ms=%d jvm_to_submit_ms=%d%n",
                LATE.get(), (LINES_DONE_NS.get() - FIRST_RECORD_NS.get()) / 1_000_000,
                result.getNetRuntime(), done - submit, submit - jvmStart);
    }
}
