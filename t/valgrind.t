#!/usr/bin/perl
# Memory errors and leaks under valgrind: every unit test binary, and
# vconv-cli over a set of conversions and error paths on tiny media.
# A run passes when valgrind reports no error (invalid reads and writes,
# uninitialised values, bad frees, definite or indirect leaks) and the
# program ends as it should.  Still-reachable memory (libav's static
# tables, codec init) is not an error.
#
# VCONV_VALGRIND_JOBS (default 2) runs that many valgrinds at once.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Spec;
use File::Temp qw(tempdir);
use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(time);
use VconvMedia qw(make_media);

my $valgrind;
for my $d (split /:/, $ENV{PATH} // '') {
    if (-x "$d/valgrind") {
        $valgrind = "$d/valgrind";
        last;
    }
}
plan skip_all => 'no valgrind in PATH (make deps installs it)'
    unless $valgrind;

my $root = "$FindBin::Bin/..";
my $build = $ENV{VCONV_BUILD} // "$root/build";
my $cli = "$build/vconv-cli";
my @units = sort glob("$build/t/test_*");
my $jobs = $ENV{VCONV_VALGRIND_JOBS} || 2;

ok(-x $cli, "$cli is built") or BAIL_OUT('make build first');
ok(@units > 0, 'unit test binaries found: ' . scalar @units);

my $dir = tempdir('vconv-vg-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $J = JSON::PP->new;

# 64x48, 0.5 s: enough frames for every encoder to buffer and flush
my %m = (size => '64x48', duration => 0.5, rate => 10);
my $mp4 = make_media($dir, 'mp4', %m);         # H.264 + AAC
my $mkv = make_media($dir, 'mkv', %m);         # H.264 + Opus
my $wav = make_media($dir, 'wav', duration => 0.5);
my $random = make_media($dir, 'random');

my $trunc = File::Spec->catfile($dir, 'trunc.mp4');
my $mkvcut = File::Spec->catfile($dir, 'cut.mkv');
cut($mp4, $trunc, 0.5);     # moov at the end: lost
cut($mkv, $mkvcut, 0.6);    # streamable: ends mid-stream

# MPEG-TS whose third stream shows up while probing: the core once freed
# per-stream probe options past the array it had made (found by
# fuzz_transcode; its control byte dropped here)
my $late = File::Spec->catfile($dir, 'late.ts');
my $crash = "$root/fuzz/regressions/transcode/"
            . 'crash-find-stream-info-new-streams';
{
    open my $in, '<:raw', $crash or die "$crash: $!";
    local $/;
    my $d = <$in>;
    open my $out, '>:raw', $late or die "$late: $!";
    print $out substr($d, 1);
    close $out or die "$late: $!";
}

sub cut {
    my ($from, $to, $part) = @_;
    open my $in, '<:raw', $from or die "$from: $!";
    local $/;
    my $d = <$in>;
    open my $out, '>:raw', $to or die "$to: $!";
    print $out substr($d, 0, int(length($d) * $part));
    close $out or die "$to: $!";
}

# name, vconv-cli arguments, the error code wanted (undef: success)
my @cli = (
    ['mp4 to mp4, scaled', ['--threads', 2, $mp4, 'o1.mp4', 'format=mp4',
                            'width=32']],
    ['mkv to webm', ['--threads', 1, $mkv, 'o2.webm', 'format=webm']],
    ['wav to mp3', [$wav, 'o3.mp3', 'format=mp3']],
    ['mp4 to gif', [$mp4, 'o4.gif', 'format=gif']],
    ['mp4 to png', [$mp4, 'o5.png', 'format=png']],
    ['mp4 remuxed into mkv', [$mp4, 'o6.mkv', 'format=mkv', 'vcodec=copy',
                              'acodec=copy']],
    ['random bytes', [$random, 'e1.mp4', 'format=mp4'],
     'unsupported_input'],
    ['truncated mp4', [$trunc, 'e2.mp4', 'format=mp4'],
     'unsupported_input'],
    ['mkv cut mid-stream', ['--threads', 1, $mkvcut, 'o7.mp4',
                            'format=mp4', 'width=32']],
    ['gif from audio', [$wav, 'e3.gif', 'format=gif'], 'no_video_stream'],
    ['resolution limit', ['--max-size', '32x32', $mp4, 'e4.mp4',
                          'format=mp4'], 'resolution_limit'],
    ['ts with a stream found late', ['--max-size', '256x256', $late,
                                     'o8.mkv', 'format=mkv', 'vcodec=copy',
                                     'acodec=copy']],
    ['output size limit', ['--threads', 1, '--max-output', 2000, $mp4,
                           'e5.mp4', 'format=mp4'], 'output_size_limit'],
    # a list's sprite (fed by the shared decoder) and info; and the same
    # failing with the sprite's grid half made
    ['list with sprite and info', [$mp4, 'o9.d', 'format=mp4,sprite,info',
                                   'width=32', 'sprite.interval=0.1']],
    ['list with sprite, failing', ['--max-output', 3000, $mp4, 'e6.d',
                                   'format=sprite,info,mp4',
                                   'sprite.interval=0.1'],
     'output_size_limit'],
);

my @runs;

for my $u (@units) {
    my $name = (File::Spec->splitpath($u))[2];
    push @runs, { name => "unit $name", cmd => [$u], unit => 1 };
}

my $n = 0;
for my $c (@cli) {
    my ($name, $args, $code) = @$c;
    $n++;
    # outputs go to the temporary folder
    my @a = map { /^[eo]\d\.\w+$/ ? File::Spec->catfile($dir, $_) : $_ }
            @$args;
    push @runs, { name => "cli $name", cmd => [$cli, @a], code => $code,
                  out => File::Spec->catfile($dir, "cli$n.json") };
}

# the slow ones first, so that the pool ends together
@runs = ((grep { $_->{unit} } @runs), (grep { !$_->{unit} } @runs));

my $t0 = time;
my %running;
my $i = 0;

while ($i < @runs || %running) {
    while ($i < @runs && keys %running < $jobs) {
        my $r = $runs[$i];
        $r->{log} = File::Spec->catfile($dir, "vg$i.log");
        $r->{t0} = time;
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if (!$pid) {
            open STDIN, '<', '/dev/null';
            open STDOUT, '>', $r->{out} // '/dev/null';
            open STDERR, '>', '/dev/null';
            exec $valgrind, '--error-exitcode=99', '--leak-check=full',
                 '--errors-for-leak-kinds=definite,indirect',
                 '--show-leak-kinds=definite,indirect',
                 '--child-silent-after-fork=yes', '--num-callers=30',
                 "--log-file=$r->{log}", @{ $r->{cmd} }
                or POSIX::_exit(127);
        }
        $running{$pid} = $r;
        $i++;
    }

    my $pid = waitpid(-1, 0);
    last if $pid <= 0;
    my $r = delete $running{$pid} or next;
    $r->{status} = $?;
    $r->{secs} = time - $r->{t0};
    check($r);
}

note(sprintf 'all runs took %.1f s with %d at a time', time - $t0, $jobs);

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return <$fh> // '';
}

sub check {
    my ($r) = @_;
    my $exit = $r->{status} >> 8;
    my $sig = $r->{status} & 127;
    my $log = slurp($r->{log});
    my $name = sprintf '%s (%.1f s)', $r->{name}, $r->{secs};

    my $clean = !$sig && $exit != 99 && $exit != 127
                && $log =~ /ERROR SUMMARY: 0 errors/;
    ok($clean, "$name: valgrind clean") or do {
        diag("exit $exit, signal $sig, command: @{ $r->{cmd} }");
        diag(valgrind_errors($log));
    };

    if ($r->{unit}) {
        is($exit, 0, "$r->{name}: the unit tests pass under valgrind");
        return;
    }

    my $out = slurp($r->{out});
    my $json = eval { $J->decode($out) };
    if (!defined $r->{code}) {
        ok($exit == 0 && $json && $json->{ok},
           "$r->{name}: converted") or diag("exit $exit: $out");
    } else {
        ok($exit == 1 && $json && !$json->{ok}
           && $json->{error}{code} eq $r->{code},
           "$r->{name}: fails with $r->{code}") or diag("exit $exit: $out");
    }
}

# the error records of a valgrind log, without the preamble and summary
sub valgrind_errors {
    my ($log) = @_;
    my $skip = qr/^==\d+==\ (Memcheck|Copyright|Using\ Valgrind|Command
                              |Parent\ PID|$)/x;
    my @lines = grep { !/$skip/ } split /\n/, $log;
    my $text = join "\n", @lines;
    return length $text > 6000 ? substr($text, 0, 6000) . "\n..." : $text;
}

done_testing();
